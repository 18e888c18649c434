"""The AR latent voice as an engine backend: a Piper voice's text encoder conditions the AR
acoustic model, decoded step by step in per-slot state (ArSlots), vocoded by its own Fourier
vocoder (distilled from the teacher's HiFi-GAN on the AR model's frames, several times cheaper)
or, when configured so, by the voice's HiFi-GAN.

The length is known at prefill (the durations fix the frame count), so decode rows finish at it.
This family is distilled from a Piper voice and runs on it: it imports piper_vits' vocoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...engine.backend import DecodeResult, PrefillResult, keep_frames, known_length_decode
from ...engine.chunking import ChunkSpan
from ...engine.requests import SynthesisOptions
from ..fingerprint import PROCESS_NONCE, file_digest, files_digest
from ..piper_vits.backend import PiperVocoding, synthesis_params
from ..piper_vits.piper_voice import PiperVoice
from .ar_acoustic import ArAcousticModel, ArConfig
from .ar_slots import ArSlots, Conditioned, decode_offline
from .ar_weights import load_model, resolve_weights
from .vocoder_weights import Vocoder, load_vocoder, packaged_vocoder_path


@dataclass(frozen=True)
class PreparedAr:
    conditioned: Conditioned
    word_frames: list[tuple[int, int]]


class ArBackend(PiperVocoding):
    kind = "ar"

    def __init__(
        self, name: str, voice: PiperVoice, model: ArAcousticModel, max_slots: int, weights: Path | None = None,
        vocoder: Vocoder | None = None, vocoder_weights: Path | None = None,
    ) -> None:
        super().__init__(name, voice, max_slots)
        self.model = model
        self.slots = ArSlots(model, max_slots)  # the engine thread's serving state
        self._weights_id = file_digest(weights) if weights is not None else f"random-{PROCESS_NONCE}"
        self.vocoder = vocoder  # None: the voice's HiFi-GAN
        if vocoder is not None:
            self.vocoder_context = vocoder.receptive_field_frames()
            self._vocoder_id = file_digest(vocoder_weights) if vocoder_weights else f"random-{PROCESS_NONCE}"

    @property
    def fingerprint(self) -> str:
        if self.vocoder is None:
            return f"{super().fingerprint}:ar={self._weights_id}"
        # the HiFi-GAN's runtime plays no part; the text encoder's device does
        piper = f"piper={files_digest(self.voice.files)}:device={self.voice.device.type}"
        return f"{self.kind}:{piper}:ar={self._weights_id}:vocoder=fourier-{self._vocoder_id}"

    def vocode(self, windows: torch.Tensor, slots: Sequence[int], spans: Sequence[ChunkSpan]) -> list[torch.Tensor]:
        return keep_frames(self._decode(windows), spans, self.hop_length)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, D, W] -> audio [B, W * hop]"""
        if self.vocoder is None:
            return self.voice.decode(z)
        with torch.inference_mode():
            return self.vocoder(z.to(self.voice.device, torch.float32))

    def prefill(self, slot: int, spoken: str, options: SynthesisOptions) -> PrefillResult:
        return self.load(slot, self.prepare(spoken, options))

    def prepare(self, spoken: str, options: SynthesisOptions) -> PreparedAr:
        """Text encoder, durations and the AR conditioning: no slot state (any thread)."""
        enc = self.voice.encode(self.voice.phoneme_ids(spoken), synthesis_params(options))
        return PreparedAr(self.slots.condition(enc.m_frames), self.voice.word_frames(enc))

    def load(self, slot: int, prepared: PreparedAr) -> PrefillResult:
        self.slots.load(slot, prepared.conditioned)
        return PrefillResult(None, prepared.conditioned.n_frames, word_frames=prepared.word_frames)

    def decode(self, slots: Sequence[int]) -> DecodeResult:
        k = self.model.cfg.frames_per_step
        totals = [self.slots.num_frames(s) for s in slots]
        produced = [min(self.slots.position(s) * k, t) for s, t in zip(slots, totals)]
        return known_length_decode(self.slots.decode_step(list(slots)), produced, totals)

    def release(self, slot: int) -> None:
        self.slots.release(slot)

    def synthesize_offline(self, spoken: str, options: SynthesisOptions) -> np.ndarray:
        """Decoded alone on a private slot (ArSlots of its own) with the same module and code."""
        enc = self.voice.encode(self.voice.phoneme_ids(spoken), synthesis_params(options))
        z = decode_offline(self.model, [enc.m_frames])[0]  # [D, F]
        return self._decode(z[None])[0].cpu().numpy()


def load_ar_backend(
    name: str, voice: PiperVoice, weights: str | None, allow_random: bool, max_slots: int, device: str,
    vocoder: str = "hifigan", vocoder_weights: str | None = None,
) -> ArBackend:
    """The configured weights file (None: the packaged one); random weights only when allowed.
    vocoder "fourier": its weights file (None: the packaged one), "hifigan": the voice's decoder."""
    path = resolve_weights(weights)
    if path is None and not allow_random:
        raise ValueError(f"voice {name!r}: an AR voice needs a weights file (none configured or packaged)")
    if path is not None and not path.is_file():
        raise ValueError(f"voice {name!r}: AR weights file {str(path)!r} not found")
    if path is not None:
        model = load_model(path, device)
    else:
        model = ArAcousticModel(ArConfig()).to(device).eval()
    if vocoder == "hifigan":
        return ArBackend(name, voice, model, max_slots, path)
    vpath = Path(vocoder_weights) if vocoder_weights is not None else packaged_vocoder_path()
    if not vpath.is_file():
        raise ValueError(f"voice {name!r}: Fourier vocoder weights file {str(vpath)!r} not found "
                         "(python -m stream_server.train.vocoder --install makes it; or vocoder: hifigan)")
    return ArBackend(name, voice, model, max_slots, path, load_vocoder(vpath, device), vpath)
