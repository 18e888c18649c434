"""Distillation dataset: the teacher (torch Piper VITS voice) turns sentences into
(conditioning, target) frame pairs for the AR acoustic model.

cond   = prior mean expanded by the duration predictor's durations  [C, F]
target = flow_reverse(cond): the HiFi-GAN decoder input, noise_scale 0  [D, F]

So the target is a deterministic function of the conditioning (the "deterministic
scales" teacher); durations vary per sentence (length_scale, noise_w with a
per-sentence seed) so the student sees the tempo range the server offers.
Frames of all sentences are concatenated into two fp16 tensors (~1.4 GB for
the 6 h of the shipped recipe) with offsets.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import torch

from ..models.piper_vits.piper_voice import PiperVoice, SynthesisParams


@dataclass(frozen=True)
class TeacherScales:
    """How a sentence's durations are drawn; the prior is always taken at its mean."""

    length_scales: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 0.9, 1.15)
    noise_ws: tuple[float, ...] = (0.0, 0.0, 0.8)


def sentence_params(index: int, scales: TeacherScales, seed: int) -> SynthesisParams:
    """Per-sentence teacher parameters, reproducible from (index, seed)."""
    rng = random.Random(seed * 1_000_003 + index)
    return SynthesisParams(
        noise_scale=0.0,
        length_scale=rng.choice(scales.length_scales),
        noise_w=rng.choice(scales.noise_ws),
        seed=index,
    )


@dataclass
class DistillDataset:
    sentences: list[str]
    params: list[SynthesisParams]
    offsets: torch.Tensor  # [N + 1] int64 frame offsets into cond/target
    cond: torch.Tensor  # [C, total_F] fp16
    target: torch.Tensor  # [D, total_F] fp16

    def __len__(self) -> int:
        return len(self.sentences)

    def lengths(self) -> list[int]:
        return (self.offsets[1:] - self.offsets[:-1]).tolist()

    def item(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.cond[:, a:b], self.target[:, a:b]

    def hours(self, frames_per_second: float) -> float:
        return int(self.offsets[-1]) / frames_per_second / 3600

    def save(self, path: Path) -> None:
        torch.save(
            {
                "sentences": self.sentences,
                "params": [asdict(p) for p in self.params],
                "offsets": self.offsets,
                "cond": self.cond,
                "target": self.target,
            },
            path,
        )

    @classmethod
    def load(cls, path: Path) -> DistillDataset:
        d = torch.load(path, weights_only=True)
        return cls(d["sentences"], [SynthesisParams(**p) for p in d["params"]], d["offsets"], d["cond"], d["target"])


def fingerprint(sentences: list[str], scales: TeacherScales, seed: int) -> str:
    """Identifies a dataset's inputs (reuse a built file only when this matches)."""
    blob = json.dumps({"s": sentences, "scales": asdict(scales), "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- building (worker processes, one torch thread each) ------------------------

_voice: PiperVoice | None = None


def _init_worker() -> None:
    global _voice
    torch.set_num_threads(1)
    _voice = PiperVoice.from_package()


def teacher_pair(voice: PiperVoice, text: str, params: SynthesisParams) -> tuple[torch.Tensor, torch.Tensor]:
    """(cond [C, F], target [D, F]) float32 for one sentence."""
    enc = voice.encode(voice.phoneme_ids(text), params)
    return enc.m_frames, voice.flow_reverse(enc.m_frames)


def _work(job: tuple[str, SynthesisParams]) -> tuple[torch.Tensor, torch.Tensor]:
    if _voice is None:
        raise RuntimeError("the worker's voice is not loaded (_init_worker)")
    cond, target = teacher_pair(_voice, *job)
    return cond.half(), target.half()


def build_dataset(
    sentences: list[str], scales: TeacherScales = TeacherScales(), seed: int = 0, workers: int = 2,
    log=print,
) -> DistillDataset:
    params = [sentence_params(i, scales, seed) for i in range(len(sentences))]
    conds, targets = [], []
    with get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        for i, (c, t) in enumerate(pool.imap(_work, zip(sentences, params), chunksize=16)):
            conds.append(c)
            targets.append(t)
            if (i + 1) % 500 == 0:
                log(f"dataset: {i + 1}/{len(sentences)} sentences")
    lengths = torch.tensor([c.shape[1] for c in conds])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    return DistillDataset(sentences, params, offsets, torch.cat(conds, 1), torch.cat(targets, 1))
