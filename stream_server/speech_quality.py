"""An objective speech-quality judge: Distill-MOS predicts a listener's mean opinion score (1..5).

A benchmark and training helper, not a serving dependency, beside the Whisper intelligibility
judge (intelligibility.py). The model and its weights ship in the PyPI package ``distillmos``
(installed with ``--no-deps`` beside ``xls-r-sqa``, see the Makefile): its declared dependency
torchaudio pins another torch, and the model itself needs only torch. ``distillmos.sqa``
imports torchaudio at the top for its command-line file loader alone, which is never called
here (audio arrives as arrays and is resampled with soxr), so where torchaudio is missing the
import is given an empty module of that name, for the duration of the import only.

    judge = DistillMosJudge()
    judge.score(audio, 22050)           # one clip -> MOS
    judge.score_many([(audio, 22050), ...])
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterable

import numpy as np
import torch

from .intelligibility import resample

MOS_RATE = 16000


def _import_distillmos() -> types.ModuleType:
    try:
        import torchaudio  # noqa: F401  (present: nothing to stand in for)
    except ImportError:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")  # only its CLI would use it
        try:
            return importlib.import_module("distillmos.sqa")
        finally:
            del sys.modules["torchaudio"]
    return importlib.import_module("distillmos.sqa")


class DistillMosJudge:
    """Loads Distill-MOS once (CPU); scores float audio at any sample rate."""

    def __init__(self, threads: int | None = None) -> None:
        sqa = _import_distillmos()
        self.model = sqa.ConvTransformerSQAModel().eval()
        self.threads = threads

    @torch.inference_mode()
    def score(self, audio: np.ndarray, sample_rate: int) -> float:
        x = torch.from_numpy(resample(audio, sample_rate, MOS_RATE))[None]  # [1, samples]
        if not torch.any(x != 0):
            raise ValueError("silent audio has no quality to judge")
        old = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            return float(self.model(x).reshape(-1)[0])
        finally:
            torch.set_num_threads(old)

    def score_many(self, clips: Iterable[tuple[np.ndarray, int]]) -> list[float]:
        return [self.score(audio, rate) for audio, rate in clips]
