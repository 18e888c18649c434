"""Piper VITS as an engine backend (engine/backend.py): every frame at prefill, HiFi-GAN vocoder.

`PiperVocoding` is the part both this family and the AR family (which runs on a Piper voice's text
encoder and decoder) share: audio shape, chunk context, vocoder, the voice's fingerprint and what
the voice listings say about it (language, speakers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...engine.backend import DecodeResult, PrefillResult, VoiceControl, keep_frames
from ...engine.chunking import ChunkSpan
from ...engine.requests import SPEAKER_OPTION, SynthesisOptions
from ..fingerprint import files_digest
from .piper_voice import PiperVoice, SynthesisParams


def synthesis_params(options: SynthesisOptions, speaker: int | None = None) -> SynthesisParams:
    return SynthesisParams(
        noise_scale=options.noise_scale,
        length_scale=options.length_scale,
        noise_w=options.noise_w,
        seed=options.seed,
        speaker=speaker,
    )


class PiperVocoding:
    """Audio side of a backend built on a Piper voice."""

    kind = "piper_vits"
    chunk_frames = None  # the engine's (configured) chunk sizes
    control: VoiceControl | None = None  # nothing of a Piper voice changes while it serves
    max_sentence_frames: int | None = None  # its frames are made at once, as many as a sentence has

    def __init__(self, name: str, voice: PiperVoice, max_slots: int) -> None:
        self.name = name
        self.voice = voice
        self.max_slots = max_slots
        self.sample_rate = voice.sample_rate
        self.hop_length = voice.hop_length
        self.frame_channels = voice.latent_channels
        # exact chunk joins: the decoder's receptive field, (11, 11) frames for en_US-joe-medium
        self.vocoder_context = voice.decoder_receptive_field_frames()
        config = voice.config
        self.language: str | None = config.language if config is not None else None
        self.espeak_voice: str | None = config.espeak_voice if config is not None else None
        self.speakers: list[str] = []  # names a session may ask for (multi-speaker voices)

    @property
    def fingerprint(self) -> str:
        """The device is part of it: CPU and GPU kernels round differently."""
        runtime = "" if self.voice.decoder_runtime == "torch" else f":vocoder={self.voice.decoder_runtime}"
        if self.voice.frontend_runtime != "torch":  # durations may differ by a frame: other audio
            runtime += f":prefill={self.voice.frontend_runtime}"
        return f"{self.kind}:piper={files_digest(self.voice.files)}:device={self.voice.device.type}{runtime}"

    def vocode(
        self, windows: torch.Tensor, slots: Sequence[int], spans: Sequence[ChunkSpan]
    ) -> list[torch.Tensor]:
        return keep_frames(self.voice.decode(windows), spans, self.hop_length)

    def release(self, slot: int) -> None:
        pass


class VitsBackend(PiperVocoding):
    """Piper VITS: encoder, durations, prior sample and flow all at prefill; never stepped.

    A multi-speaker voice speaks its configured speaker, or the one a request names
    (SynthesisOptions.extra "speaker"); each slot remembers its speaker for the vocoder, which
    decodes rows of different speakers in one batch."""

    def __init__(self, name: str, voice: PiperVoice, max_slots: int, speaker: str | None = None) -> None:
        super().__init__(name, voice, max_slots)
        multi = voice.num_speakers > 1
        if speaker is not None and not multi:
            raise ValueError(f"voice {name!r}: speaker {speaker!r} given, but the voice has one speaker")
        self.speakers = voice.config.speakers if multi and voice.config is not None else []
        self.default_speaker: int | None = None
        if multi:
            if voice.config is None:
                raise ValueError(f"voice {name!r}: a multi-speaker voice needs its config (the speakers' names)")
            try:
                self.default_speaker = (
                    voice.config.speaker_id(speaker) if speaker is not None else voice.config.default_speaker_id
                )
            except ValueError as exc:
                raise ValueError(f"voice {name!r}: {exc}") from None
        self._slot_speakers: dict[int, int] = {}  # multi-speaker voices: each slot's speaker

    @property
    def fingerprint(self) -> str:
        own = f":speaker={self.default_speaker}" if self.default_speaker is not None else ""
        return super().fingerprint + own

    def speaker_id(self, options: SynthesisOptions) -> int | None:
        """The request's speaker (by name, or number) or the voice's; None: a single-speaker voice."""
        asked = options.extra_value(SPEAKER_OPTION)
        if asked is None:
            return self.default_speaker
        config = self.voice.config
        if self.default_speaker is None or config is None:  # (a multi-speaker voice has its config)
            raise ValueError(f"voice {self.name!r} has one speaker; {asked!r} asked for")
        return config.speaker_id(asked)

    def prefill(self, slot: int, spoken: str, options: SynthesisOptions) -> PrefillResult:
        return self.load(slot, self.prepare(spoken, options))

    def prepare(self, spoken: str, options: SynthesisOptions) -> tuple[int | None, PrefillResult]:
        """The whole sentence's latents: no slot state (any thread)."""
        speaker = self.speaker_id(options)
        params = synthesis_params(options, speaker)
        enc = self.voice.encode(self.voice.phoneme_ids(spoken), params)  # as voice.latents()
        z = self.voice.flow_reverse(self.voice.prior_sample(enc, params), speaker)  # [C, F]
        return speaker, PrefillResult(z, int(z.shape[-1]), finished=True, word_frames=self.voice.word_frames(enc))

    def load(self, slot: int, prepared: tuple[int | None, PrefillResult]) -> PrefillResult:
        speaker, result = prepared
        if speaker is not None:
            self._slot_speakers[slot] = speaker  # the vocoder's rows of this slot speak as it
        return result

    def decode(self, slots: Sequence[int]) -> DecodeResult:
        raise RuntimeError("a non-autoregressive voice has no decode step")

    def vocode(
        self, windows: torch.Tensor, slots: Sequence[int], spans: Sequence[ChunkSpan]
    ) -> list[torch.Tensor]:
        speakers = None if self.default_speaker is None else [self._slot_speakers[s] for s in slots]
        return keep_frames(self.voice.decode(windows, speakers), spans, self.hop_length)

    def release(self, slot: int) -> None:
        self._slot_speakers.pop(slot, None)

    def synthesize_offline(self, spoken: str, options: SynthesisOptions) -> np.ndarray:
        return self.voice.synthesize(spoken, synthesis_params(options, self.speaker_id(options)))
