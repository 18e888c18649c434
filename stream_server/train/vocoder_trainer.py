"""Training the Fourier vocoder to speak like the teacher's HiFi-GAN, from the AR voice's frames.

Each sample is one segment: `segment_frames` frames whose audio is judged, inside the window of
context the vocoder has when streaming (receptive_field_frames either side, cut at the
sentence's edges and padded with masked frames there), so training sees exactly what serving
decodes. The loss compares the segment's audio with the teacher's at several STFT resolutions:
log magnitude (L1), spectral convergence, and the complex spectrum compressed to |X|^0.3 with
its phase (so the phase is learnt from a target, not left to chance: there is no adversary
here), plus a little waveform L1. AdamW, warm-up then cosine decay, fixed seeds.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..models.ar_latent.fourier_vocoder import FourierVocoder, FourierVocoderConfig
from .vocoder_data import VocoderDataset

RESOLUTIONS = (2048, 1024, 512, 256, 128)  # STFT sizes of the loss (hop = size / 4)


@dataclass(frozen=True)
class VocoderTrainConfig:
    steps: int = 8000
    batch: int = 16
    segment_frames: int = 32
    teacher_input_fraction: float = 0.2  # segments whose input is the teacher's frames, not the AR's
    lr: float = 1e-3
    min_lr: float = 2e-5
    warmup: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    complex_weight: float = 1.0
    wave_weight: float = 1.0
    val_sentences: int = 48
    log_every: int = 50
    eval_every: int = 500
    seed: int = 0
    threads: int = 2


def lr_at(step: int, cfg: VocoderTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def _magnitude(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x.real.square() + x.imag.square() + 1e-9)  # no NaN gradient at 0


def spectral_loss(pred: torch.Tensor, target: torch.Tensor, cfg: VocoderTrainConfig) -> dict[str, torch.Tensor]:
    """pred, target [B, T] -> the loss's terms (each a scalar) and their weighted 'total'."""
    terms = {"log_mag": 0.0, "convergence": 0.0, "complex": 0.0}
    for n in RESOLUTIONS:
        window = torch.hann_window(n, device=pred.device)
        X = torch.stft(pred, n, n // 4, window=window, return_complex=True)
        Y = torch.stft(target, n, n // 4, window=window, return_complex=True)
        mx, my = _magnitude(X), _magnitude(Y)
        terms["log_mag"] = terms["log_mag"] + (torch.log(mx + 1e-5) - torch.log(my + 1e-5)).abs().mean()
        terms["convergence"] = terms["convergence"] + torch.linalg.norm(mx - my) / (torch.linalg.norm(my) + 1e-7)
        cx, cy = X * mx.pow(-0.7), Y * my.pow(-0.7)  # |X|^0.3 with X's phase
        terms["complex"] = terms["complex"] + _magnitude(cx - cy).square().mean()
    out = {k: v / len(RESOLUTIONS) for k, v in terms.items()}
    out["wave"] = (pred - target).abs().mean()
    out["total"] = (out["log_mag"] + out["convergence"] + cfg.complex_weight * out["complex"]
                    + cfg.wave_weight * out["wave"])
    return out


class SegmentSampler:
    """Random training segments in the window the vocoder streams with."""

    def __init__(self, data: VocoderDataset, indices: list[int], context: tuple[int, int],
                 cfg: VocoderTrainConfig, rng: random.Random) -> None:
        self.data, self.cfg, self.rng = data, cfg, rng
        self.left, self.right = context
        lengths = data.lengths()
        self.indices = [i for i in indices if lengths[i] >= cfg.segment_frames]
        self.lengths = lengths

    def batch(self, n: int, teacher_fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> z [B, D, W], mask [B, W], audio [B, S * hop] (W = left + S + right)."""
        rows = [self.segment(self.rng.choice(self.indices), self.rng.random() < teacher_fraction) for _ in range(n)]
        return tuple(torch.stack(parts) for parts in zip(*rows))  # type: ignore[return-value]

    def segment(self, i: int, teacher: bool, start: int | None = None):
        S, hop = self.cfg.segment_frames, self.data.hop
        F = self.lengths[i]
        a = self.rng.randrange(0, F - S + 1) if start is None else start
        frames = self.data.frames(i, "teacher" if teacher else "ar").float()
        W = self.left + S + self.right
        lo, hi = max(0, a - self.left), min(F, a + S + self.right)
        z = torch.zeros(frames.shape[0], W)
        mask = torch.zeros(W, dtype=torch.bool)
        off = lo - (a - self.left)
        z[:, off : off + hi - lo] = frames[:, lo:hi]
        mask[off : off + hi - lo] = True
        audio = self.data.sentence_audio(i)[a * hop : (a + S) * hop]
        return z, mask, audio


def kept(audio: torch.Tensor, left: int, segment: int, hop: int) -> torch.Tensor:
    """audio [B, W * hop] of whole windows -> the segment's samples [B, segment * hop]"""
    return audio[:, left * hop : (left + segment) * hop]


def split(n: int, cfg: VocoderTrainConfig) -> tuple[list[int], list[int]]:
    idx = list(range(n))
    random.Random(cfg.seed).shuffle(idx)
    return sorted(idx[cfg.val_sentences :]), sorted(idx[: cfg.val_sentences])


@torch.no_grad()
def validation_loss(model: FourierVocoder, sampler: SegmentSampler, cfg: VocoderTrainConfig) -> float:
    """The loss on fixed segments (the middle of each validation sentence), AR frames in."""
    model.eval()
    rows = [sampler.segment(i, False, (sampler.lengths[i] - cfg.segment_frames) // 2) for i in sampler.indices]
    z, mask, target = (torch.stack(p) for p in zip(*rows))
    pred = kept(model(z, mask), sampler.left, cfg.segment_frames, model.hop)
    model.train()
    return float(spectral_loss(pred, target, cfg)["total"])


def train_vocoder(
    data: VocoderDataset, cfg: VocoderTrainConfig, model_cfg: FourierVocoderConfig, log_path: Path,
    checkpoint: Path | None = None, log=print, on_eval=None,
) -> FourierVocoder:
    """Train for cfg.steps; JSON lines to log_path; `on_eval(model, step)` may add figures to each
    evaluation record (e.g. a MOS). Returns the model in eval mode."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    model = FourierVocoder(model_cfg).train()
    context = model.receptive_field_frames()
    train_idx, val_idx = split(len(data), cfg)
    sampler = SegmentSampler(data, train_idx, context, cfg, rng)
    val_sampler = SegmentSampler(data, val_idx, context, cfg, random.Random(cfg.seed + 1))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    start = time.perf_counter()
    with log_path.open("w") as logf:
        for step in range(cfg.steps):
            z, mask, target = sampler.batch(cfg.batch, cfg.teacher_input_fraction)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            pred = kept(model(z, mask), context[0], cfg.segment_frames, model.hop)
            terms = spectral_loss(pred, target, cfg)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            grad = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
            opt.step()
            record = {"step": step + 1, **{k: round(float(v.detach()), 5) for k, v in terms.items()},
                      "lr": lr_at(step, cfg), "grad_norm": round(grad, 4),
                      "seconds": round(time.perf_counter() - start, 1)}
            if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
                record["val_loss"] = round(validation_loss(model, val_sampler, cfg), 5)
                if on_eval is not None:
                    model.eval()
                    record.update(on_eval(model, step + 1))
                    model.train()
                if checkpoint is not None:
                    torch.save(model.state_dict(), checkpoint)
            if (step + 1) % cfg.log_every == 0 or "val_loss" in record:
                logf.write(json.dumps(record) + "\n")
                logf.flush()
                log(" ".join(f"{k}={v}" for k, v in record.items()))
    return model.eval()


def describe(cfg: VocoderTrainConfig, model_cfg: FourierVocoderConfig) -> dict:
    return {"train": asdict(cfg), "model": asdict(model_cfg)}
