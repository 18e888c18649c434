"""Training the Fourier vocoder to speak like the teacher's HiFi-GAN, from the AR voice's frames.

Each sample is one segment: `segment_frames` frames whose audio is judged, inside the window of
context the vocoder has when streaming (receptive_field_frames either side, cut at the
sentence's edges and padded with masked frames there), so training sees exactly what serving
decodes. The loss has two parts:
- the vocoder's own spectra against the teacher audio's analysis at the same framing
  (fourier_vocoder.analysis_frames): log magnitude (L1) and spectral convergence, and the phase
  with anti-wrapping errors (instantaneous phase, group delay along frequency, instantaneous
  frequency along time), weighted by the teacher's magnitude. The phase has its own target and
  its own output, so a phase not yet learnt never pulls the magnitude down (as a complex-valued
  loss does); there is no adversary here to learn it implicitly;
- the audio they make against the teacher's at several STFT resolutions (log magnitude,
  spectral convergence), plus a little waveform L1.
AdamW, warm-up then cosine decay, fixed seeds.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..models.ar_latent.fourier_vocoder import OLA_FIRST, OLA_SPAN, analysis_frames
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
    phase_weight: float = 1.0
    warm_lr_scale: float = 0.2  # layers copied from the teacher fine-tune more gently
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


def _wrapped(x: torch.Tensor) -> torch.Tensor:
    """|x| after wrapping into [-pi, pi]: the anti-wrapping error of a phase difference."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def frame_loss(log_mag: torch.Tensor, phase: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The vocoder's spectra (log_mag, phase [B, S, bins]) against the target's (complex)."""
    mag_t = _magnitude(target)
    weight = mag_t / mag_t.mean()  # the phase of near-silent bins is noise: it barely counts
    phase_t = torch.angle(target)

    def weighted(err: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (err * w).sum() / w.sum()

    gd_w, iaf_w = torch.minimum(weight[..., 1:], weight[..., :-1]), torch.minimum(weight[:, 1:], weight[:, :-1])
    return {
        "frame_log_mag": (log_mag - torch.log(mag_t + 1e-5)).abs().mean(),
        "frame_convergence": torch.linalg.norm(torch.exp(log_mag) - mag_t) / (torch.linalg.norm(mag_t) + 1e-7),
        "phase": weighted(_wrapped(phase - phase_t), weight),
        "group_delay": weighted(_wrapped(phase.diff(dim=-1) - phase_t.diff(dim=-1)), gd_w),
        "inst_freq": weighted(_wrapped(phase.diff(dim=1) - phase_t.diff(dim=1)), iaf_w),
    }


def audio_loss(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """pred, target [B, T]: multi-resolution STFT magnitudes and the waveform."""
    log_mag = convergence = pred.new_zeros(())
    for n in RESOLUTIONS:
        window = torch.hann_window(n, device=pred.device)
        mx = _magnitude(torch.stft(pred, n, n // 4, window=window, return_complex=True))
        my = _magnitude(torch.stft(target, n, n // 4, window=window, return_complex=True))
        log_mag = log_mag + (torch.log(mx + 1e-5) - torch.log(my + 1e-5)).abs().mean()
        convergence = convergence + torch.linalg.norm(mx - my) / (torch.linalg.norm(my) + 1e-7)
    return {"log_mag": log_mag / len(RESOLUTIONS), "convergence": convergence / len(RESOLUTIONS),
            "wave": (pred - target).abs().mean()}


def vocoder_loss(model, z: torch.Tensor, mask: torch.Tensor, audio: torch.Tensor,
                 left: int, cfg: VocoderTrainConfig) -> dict[str, torch.Tensor]:
    """z [B, D, W], mask [B, W], audio [B, (S * hop / sh + OLA_SPAN - 1) * sh] of the teacher from
    spectral block OLA_FIRST of the segment on (sh: the model's spectral hop) -> every term of the
    loss, and their weighted 'total'."""
    S, hop, sh = cfg.segment_frames, model.hop, model.spectral_hop
    per_frame = hop // sh  # spectra per frame
    log_mag, phase = model.log_magnitude_and_phase(z, mask)
    pred = kept(model.synthesize(log_mag, phase, mask), left, S, hop)
    span = slice(left * per_frame, (left + S) * per_frame)
    terms = frame_loss(log_mag[:, span], phase[:, span], analysis_frames(audio, sh))
    terms.update(audio_loss(pred, audio[:, -OLA_FIRST * sh : -OLA_FIRST * sh + S * hop]))
    phase_terms = terms["phase"] + terms["group_delay"] + terms["inst_freq"]
    terms["total"] = (terms["frame_log_mag"] + terms["frame_convergence"] + cfg.phase_weight * phase_terms
                      + terms["log_mag"] + terms["convergence"] + cfg.wave_weight * terms["wave"])
    return terms


class SegmentSampler:
    """Random training segments in the window the vocoder streams with."""

    def __init__(self, data: VocoderDataset, indices: list[int], model, cfg: VocoderTrainConfig,
                 rng: random.Random) -> None:
        self.data, self.cfg, self.rng = data, cfg, rng
        self.left, self.right = model.receptive_field_frames()
        self.spectral_hop = model.spectral_hop
        # a model without a padding mask is trained on whole windows inside a sentence
        self.whole = not model.supports_mask
        lengths = data.lengths()
        shortest = self.left + cfg.segment_frames + self.right if self.whole else cfg.segment_frames
        self.indices = [i for i in indices if lengths[i] >= shortest]
        self.lengths = lengths

    def batch(self, n: int, teacher_fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> z [B, D, W], mask [B, W], audio [B, (S + OLA_SPAN - 1) * hop] (W = left + S + right)."""
        rows = [self.segment(self.rng.choice(self.indices), self.rng.random() < teacher_fraction) for _ in range(n)]
        return tuple(torch.stack(parts) for parts in zip(*rows))  # type: ignore[return-value]

    def segment(self, i: int, teacher: bool, start: int | None = None):
        S, hop, sh = self.cfg.segment_frames, self.data.hop, self.spectral_hop
        F = self.lengths[i]
        lo, hi = (self.left, F - S - self.right) if self.whole else (0, F - S)
        a = self.rng.randrange(lo, hi + 1) if start is None else min(max(start, lo), hi)
        frames = self.data.frames(i, "teacher" if teacher else "ar").float()
        W = self.left + S + self.right
        lo, hi = max(0, a - self.left), min(F, a + S + self.right)
        z = torch.zeros(frames.shape[0], W)
        mask = torch.zeros(W, dtype=torch.bool)
        off = lo - (a - self.left)
        z[:, off : off + hi - lo] = frames[:, lo:hi]
        mask[off : off + hi - lo] = True
        # the teacher's audio the segment's spectra cover: from spectral block OLA_FIRST before
        # it to OLA_SPAN - 1 + OLA_FIRST past it (zeros beyond the sentence)
        sentence = self.data.sentence_audio(i)
        first, last = a * hop + OLA_FIRST * sh, (a + S) * hop + (OLA_SPAN - 1 + OLA_FIRST) * sh
        audio = torch.zeros(last - first)
        lo, hi = max(0, first), min(sentence.numel(), last)
        audio[lo - first : hi - first] = sentence[lo:hi]
        return z, mask, audio


def kept(audio: torch.Tensor, left: int, segment: int, hop: int) -> torch.Tensor:
    """audio [B, W * hop] of whole windows -> the segment's samples [B, segment * hop]"""
    return audio[:, left * hop : (left + segment) * hop]


def split(n: int, cfg: VocoderTrainConfig) -> tuple[list[int], list[int]]:
    idx = list(range(n))
    random.Random(cfg.seed).shuffle(idx)
    return sorted(idx[cfg.val_sentences :]), sorted(idx[: cfg.val_sentences])


@torch.no_grad()
def validation_loss(model, sampler: SegmentSampler, cfg: VocoderTrainConfig) -> float:
    """The loss on fixed segments (the middle of each validation sentence), AR frames in."""
    model.eval()
    rows = [sampler.segment(i, False, (sampler.lengths[i] - cfg.segment_frames) // 2) for i in sampler.indices]
    z, mask, audio = (torch.stack(p) for p in zip(*rows))
    loss = float(vocoder_loss(model, z, mask, audio, sampler.left, cfg)["total"])
    model.train()
    return loss


def train_vocoder(
    data: VocoderDataset, cfg: VocoderTrainConfig, model, log_path: Path,
    checkpoint: Path | None = None, log=print, on_eval=None, warm: AbstractSet[str] = frozenset(),
):
    """Train `model` for cfg.steps; JSON lines to log_path; `on_eval(model, step)` may add figures
    to each evaluation record (e.g. a MOS). Parameters named under a prefix in `warm` (copied from
    the teacher) learn at cfg.warm_lr_scale of the rate. Returns the model in eval mode."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    model.train()
    context = model.receptive_field_frames()
    train_idx, val_idx = split(len(data), cfg)
    sampler = SegmentSampler(data, train_idx, model, cfg, rng)
    val_sampler = SegmentSampler(data, val_idx, model, cfg, random.Random(cfg.seed + 1))
    named = list(model.named_parameters())
    is_warm = [any(n.startswith(w) for w in warm) for n, _ in named]
    groups = [{"params": [p for (_, p), w in zip(named, is_warm) if not w], "scale": 1.0},
              {"params": [p for (_, p), w in zip(named, is_warm) if w], "scale": cfg.warm_lr_scale}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(0.9, 0.99))
    start = time.perf_counter()
    with log_path.open("w") as logf:
        for step in range(cfg.steps):
            z, mask, audio = sampler.batch(cfg.batch, cfg.teacher_input_fraction)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg) * g["scale"]
            terms = vocoder_loss(model, z, mask, audio, context[0], cfg)
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


def describe(cfg: VocoderTrainConfig, model) -> dict:
    return {"train": asdict(cfg), "model": model.cfg.as_dict()}
