"""Piper VITS as an engine backend (engine/backend.py): every frame at prefill, HiFi-GAN vocoder.

`PiperVocoding` is the part both this family and the AR family (which runs on a Piper voice's text
encoder and decoder) share: audio shape, chunk context, vocoder and the voice's fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...engine.backend import DecodeResult, PrefillResult, keep_frames
from ...engine.chunking import ChunkSpan
from ...engine.requests import SynthesisOptions
from ..fingerprint import files_digest
from .piper_voice import PiperVoice, SynthesisParams


def synthesis_params(options: SynthesisOptions) -> SynthesisParams:
    return SynthesisParams(
        noise_scale=options.noise_scale,
        length_scale=options.length_scale,
        noise_w=options.noise_w,
        seed=options.seed,
    )


class PiperVocoding:
    """Audio side of a backend built on a Piper voice."""

    kind = "piper_vits"
    chunk_frames = None  # the engine's (configured) chunk sizes

    def __init__(self, name: str, voice: PiperVoice, max_slots: int) -> None:
        self.name = name
        self.voice = voice
        self.max_slots = max_slots
        self.sample_rate = voice.sample_rate
        self.hop_length = voice.hop_length
        self.frame_channels = voice.latent_channels
        # exact chunk joins: the decoder's receptive field, (11, 11) frames for en_US-joe-medium
        self.vocoder_context = voice.decoder_receptive_field_frames()

    @property
    def fingerprint(self) -> str:
        """The device is part of it: CPU and GPU kernels round differently."""
        return f"{self.kind}:piper={files_digest(self.voice.files)}:device={self.voice.device.type}"

    def vocode(
        self, windows: torch.Tensor, slots: Sequence[int], spans: Sequence[ChunkSpan]
    ) -> list[torch.Tensor]:
        return keep_frames(self.voice.decode(windows), spans, self.hop_length)

    def release(self, slot: int) -> None:
        pass


class VitsBackend(PiperVocoding):
    """Piper VITS: encoder, durations, prior sample and flow all at prefill; never stepped."""

    def prefill(self, slot: int, spoken: str, options: SynthesisOptions) -> PrefillResult:
        params = synthesis_params(options)
        enc = self.voice.encode(self.voice.phoneme_ids(spoken), params)  # as voice.latents()
        z = self.voice.flow_reverse(self.voice.prior_sample(enc, params))  # [C, F]
        return PrefillResult(z, int(z.shape[-1]), finished=True, word_frames=self.voice.word_frames(enc))

    def decode(self, slots: Sequence[int]) -> DecodeResult:
        raise RuntimeError("a non-autoregressive voice has no decode step")

    def synthesize_offline(self, spoken: str, options: SynthesisOptions) -> np.ndarray:
        return self.voice.synthesize(spoken, synthesis_params(options))
