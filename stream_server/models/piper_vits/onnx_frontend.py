"""A Piper voice's text encoder and duration predictor run by onnxruntime (engine.prefill_runtime).

They are the prefill's heaviest part on a CPU, paid once per sentence before its first decode step:
onnxruntime runs the text encoder 1.35x and the stochastic duration flows 2.2x faster than eager
torch (bench/engine_profile.py; one thread, on the prepare thread). Exported from the torch
modules (models/onnx_module.py: cached by weights) and held equal to them by
tests/test_onnx_frontend.py; a sentence's durations come from the same graph whether it is
streamed or synthesized offline, so the two stay equal.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..onnx_module import OnnxModule
from .vits_duration import StochasticDurationSampler
from .vits_text_encoder import TextEncoder


class _Durations(nn.Module):
    """forward(hidden, noise[, g]) with tensors only (g: multi-speaker voices)."""

    def __init__(self, duration: StochasticDurationSampler, speakers: bool) -> None:
        super().__init__()
        self.duration = duration
        self.speakers = speakers

    def forward(self, hidden: torch.Tensor, noise: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        return self.duration(hidden, noise, g if self.speakers else None)


class OnnxFrontend:
    """text(ids [1, T]) -> hidden [1, H, T], m, logs [1, C, T]; durations(hidden, noise [1, 2, T],
    g [1, S, 1] | None) -> logw [1, T]."""

    def __init__(self, text_encoder: TextEncoder, duration: StochasticDurationSampler, speaker_channels: int,
                 cache_dir: Path | None = None, threads: int = 1) -> None:
        ids = torch.zeros(1, 12, dtype=torch.long)
        self.encoder = OnnxModule(text_encoder, (ids,), ["ids"], ["hidden", "m", "logs"],
                                  {"ids": {1: "T"}, "hidden": {2: "T"}, "m": {2: "T"}, "logs": {2: "T"}},
                                  "text-encoder", cache_dir, threads)
        self.speakers = speaker_channels > 0
        hidden = torch.zeros(1, text_encoder.channels, 12)
        noise = torch.zeros(1, 2, 12)
        names, example = ["hidden", "noise"], [hidden, noise]
        if self.speakers:
            names, example = [*names, "g"], [hidden, noise, torch.zeros(1, speaker_channels, 1)]
        self.duration = OnnxModule(_Durations(duration, self.speakers), tuple(example), names, ["logw"],
                                   {"hidden": {2: "T"}, "noise": {2: "T"}, "logw": {1: "T"}},
                                   "durations", cache_dir, threads)

    def text(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden, m, logs = self.encoder(ids)
        return hidden, m, logs

    def durations(self, hidden: torch.Tensor, noise: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        if self.speakers:
            if g is None:
                raise ValueError("this voice's duration predictor needs a speaker embedding")
            return self.duration(hidden, noise, g)[0]
        return self.duration(hidden, noise)[0]
