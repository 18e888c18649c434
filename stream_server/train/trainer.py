"""Teacher-forced training of the AR acoustic model on a distillation dataset.

Length-bucketed batches (a frame budget per batch, so short sentences come in
big batches), AdamW with warm-up and cosine decay over a fixed number of steps,
masked L1 + L2 loss on the latent frames. Prenet dropout stays on in training:
the model must not learn to copy its previous frames, since at serving time
those are its own predictions. Everything is seeded; the loss curve goes to a
JSON-lines log.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..models.ar_latent.ar_acoustic import ArAcousticModel, ArConfig
from .dataset import DistillDataset


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4500
    frames_per_batch: int = 4000  # padded frames per batch (B * longest)
    lr: float = 1e-3
    min_lr: float = 5e-5
    warmup: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    l2_weight: float = 0.5
    val_sentences: int = 96
    log_every: int = 50
    eval_every: int = 500
    seed: int = 0
    threads: int = 2
    device: str = "cpu"


def make_batches(lengths: list[int], indices: list[int], frames_per_batch: int) -> list[list[int]]:
    """Group indices of similar length so B * max_len stays within the budget."""
    order = sorted(indices, key=lambda i: lengths[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) + 1) * lengths[i] > frames_per_batch:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def collate(data: DistillDataset, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> cond [B, C, F], mask [B, F] bool, target [B, D, F] float32, zero padded."""
    items = [data.item(i) for i in idx]
    F = max(c.shape[1] for c, _ in items)
    C, D = items[0][0].shape[0], items[0][1].shape[0]
    cond, target = torch.zeros(len(idx), C, F), torch.zeros(len(idx), D, F)
    mask = torch.zeros(len(idx), F, dtype=torch.bool)
    for b, (c, t) in enumerate(items):
        n = c.shape[1]
        cond[b, :, :n], target[b, :, :n], mask[b, :n] = c.float(), t.float(), True
    return cond, mask, target


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, l2_weight: float) -> torch.Tensor:
    """Mean over valid frames and channels of |e| + l2_weight * e^2."""
    m = mask.to(pred.dtype)[:, None]  # [B, 1, F]
    err = (pred - target) * m
    denom = m.sum() * pred.shape[1]
    return (err.abs().sum() + l2_weight * err.pow(2).sum()) / denom


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def split(n: int, cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """(train, validation) sentence indices; validation is a seeded sample."""
    idx = list(range(n))
    random.Random(cfg.seed).shuffle(idx)
    return sorted(idx[cfg.val_sentences:]), sorted(idx[: cfg.val_sentences])


@torch.no_grad()
def validation_loss(model: ArAcousticModel, data: DistillDataset, val: list[int], cfg: TrainConfig) -> float:
    """Teacher-forced loss on the validation sentences (eval mode: no dropout)."""
    model.eval()
    total, frames = 0.0, 0
    for batch in make_batches(data.lengths(), val, cfg.frames_per_batch):
        cond, mask, target = (t.to(next(model.parameters()).device) for t in collate(data, batch))
        n = int(mask.sum())
        total += float(masked_loss(model.forward_train(cond, mask, target), target, mask, cfg.l2_weight)) * n
        frames += n
    model.train()
    return total / frames


def train(
    data: DistillDataset, cfg: TrainConfig, model_cfg: ArConfig, log_path: Path,
    checkpoint: Path | None = None, log=print,
) -> ArAcousticModel:
    """Train for ``cfg.steps`` steps; log JSON lines to ``log_path``; return the model (eval mode)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    device = torch.device(cfg.device)
    model = ArAcousticModel(model_cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    train_idx, val_idx = split(len(data), cfg)
    batches: list[list[int]] = []
    start = time.perf_counter()
    with log_path.open("w") as logf:
        for step in range(cfg.steps):
            if not batches:  # new epoch: same buckets, fresh order
                batches = make_batches(data.lengths(), train_idx, cfg.frames_per_batch)
                rng.shuffle(batches)
            cond, mask, target = (t.to(device) for t in collate(data, batches.pop()))
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            loss = masked_loss(model.forward_train(cond, mask, target), target, mask, cfg.l2_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
            opt.step()
            record = {"step": step + 1, "loss": round(float(loss.detach()), 5), "lr": lr_at(step, cfg),
                      "grad_norm": round(grad, 4), "seconds": round(time.perf_counter() - start, 1)}
            if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
                record["val_loss"] = round(validation_loss(model, data, val_idx, cfg), 5)
                if checkpoint is not None:
                    torch.save(model.state_dict(), checkpoint)
            if (step + 1) % cfg.log_every == 0 or "val_loss" in record:
                logf.write(json.dumps(record) + "\n")
                logf.flush()
                log(" ".join(f"{k}={v}" for k, v in record.items()))
    return model.cpu().eval()


def describe(cfg: TrainConfig, model_cfg: ArConfig) -> dict:
    return {"train": asdict(cfg), "model": asdict(model_cfg)}
