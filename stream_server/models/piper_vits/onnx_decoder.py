"""A Piper voice's HiFi-GAN decoder run by onnxruntime (engine.vocoder_runtime: onnxruntime).

The vocoder is most of the engine's time on a CPU (bench/engine_profile.py); onnxruntime runs the
same graph in less time than eager torch, on a thread pool of its own beside the engine's torch
thread (on 2 cores the server's throughput at 16 sessions nearly doubled: bench/bench_peer.py
--vocoder-runtime torch / onnxruntime). The torch module stays the reference: the graph is
exported from it (never read from the voice's .onnx, whose decoder is fused with the rest of
VITS), and tests/test_onnx_decoder.py holds the two equal. Exports are cached by the weights
(models/onnx_module.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..onnx_module import OnnxModule
from .vits_decoder import HifiganGenerator


class _WithSpeaker(nn.Module):
    """forward(z, g): the export's inputs must all be tensors (g only for multi-speaker voices)."""

    def __init__(self, decoder: HifiganGenerator) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return self.decoder(z, g)


class OnnxDecoder:
    """Callable like the torch decoder: (z [B, C, F], g [B, S, 1] | None) -> audio [B, F * hop]."""

    def __init__(self, decoder: HifiganGenerator, cache_dir: Path | None = None, threads: int = 0) -> None:
        self.speakers = decoder.cond is not None
        z = torch.zeros(1, decoder.cfg.in_channels, 32)
        axes = {"z": {0: "batch", 2: "frames"}, "audio": {0: "batch", 1: "samples"}}
        if self.speakers:
            g = torch.zeros(1, decoder.cfg.speaker_channels, 1)
            self.module = OnnxModule(_WithSpeaker(decoder), (z, g), ["z", "g"], ["audio"],
                                     {**axes, "g": {0: "batch"}}, "hifigan", cache_dir, threads)
        else:
            self.module = OnnxModule(decoder, (z,), ["z"], ["audio"], axes, "hifigan", cache_dir, threads)
        self.path = self.module.path

    def __call__(self, z: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        if not self.speakers:
            return self.module(z)[0]
        if g is None:
            raise ValueError("this voice's decoder needs a speaker embedding")
        return self.module(z, g)[0]
