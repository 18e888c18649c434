"""The model interface the engine schedules: prefill / decode_step / vocode, per slot.

A non-autoregressive voice (Piper VITS) returns all its latent frames from prefill and is never
stepped; an autoregressive model returns none at prefill and K frames per slot per decode step.
Both share the HiFi-GAN decoder as vocoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .requests import SynthesisOptions


@dataclass
class PrefillOutput:
    num_frames: int  # total latent frames the sentence will have
    frames: torch.Tensor | None  # [C, n] frames available at once (None: none yet)
    # (start, end) frame of each spoken word group, from the voice's phoneme durations;
    # None: this backend does not know (the sentence then gets no word timings)
    word_frames: list[tuple[int, int]] | None = None


class AcousticBackend(Protocol):
    name: str
    sample_rate: int
    hop_length: int
    latent_channels: int
    max_slots: int

    def prefill(self, slot: int, text: str, options: SynthesisOptions) -> PrefillOutput: ...

    def decode_step(self, slots: list[int]) -> torch.Tensor:
        """One batched step: [len(slots), K, C] new frames per slot."""
        ...

    def release(self, slot: int) -> None: ...

    def vocode(self, windows: torch.Tensor) -> torch.Tensor:
        """[B, C, W] latent windows -> [B, W * hop_length] float audio."""
        ...
