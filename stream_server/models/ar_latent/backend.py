"""The AR latent voice as an engine backend: a Piper voice's text encoder conditions the AR
acoustic model, decoded step by step in per-slot state (ArSlots), vocoded by the voice's HiFi-GAN.

The length is known at prefill (the durations fix the frame count), so decode rows finish at it.
This family is distilled from a Piper voice and runs on it: it imports piper_vits' vocoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...engine.backend import DecodeResult, PrefillResult, known_length_decode
from ...engine.requests import SynthesisOptions
from ..fingerprint import PROCESS_NONCE, file_digest
from ..piper_vits.backend import PiperVocoding, synthesis_params
from ..piper_vits.piper_voice import PiperVoice
from .ar_acoustic import ArAcousticModel, ArConfig
from .ar_slots import ArSlots, Conditioned, decode_offline
from .ar_weights import load_model, resolve_weights


@dataclass(frozen=True)
class PreparedAr:
    conditioned: Conditioned
    word_frames: list[tuple[int, int]]


class ArBackend(PiperVocoding):
    kind = "ar"

    def __init__(
        self, name: str, voice: PiperVoice, model: ArAcousticModel, max_slots: int, weights: Path | None = None
    ) -> None:
        super().__init__(name, voice, max_slots)
        self.model = model
        self.slots = ArSlots(model, max_slots)  # the engine thread's serving state
        # its static KV cache holds max_steps steps of frames_per_step frames per slot
        self.max_sentence_frames: int | None = model.cfg.max_steps * model.cfg.frames_per_step
        self._weights_id = file_digest(weights) if weights is not None else f"random-{PROCESS_NONCE}"

    @property
    def fingerprint(self) -> str:
        condition = "" if self.model.onnx_condition is None else ":condition=onnxruntime"
        return f"{super().fingerprint}:ar={self._weights_id}{condition}"

    def use_onnx_prefill(self, cache_dir: Path | None = None) -> None:
        """The conditioning stack on onnxruntime (the voice's text encoder and durations are the
        Piper voice's: PiperVoices sets them)."""
        self.model.use_onnx_condition(cache_dir, threads=1)

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
        return self.voice.decode(z[None])[0].cpu().numpy()


def load_ar_backend(
    name: str, voice: PiperVoice, weights: str | None, allow_random: bool, max_slots: int, device: str
) -> ArBackend:
    """The configured weights file (None: the packaged one); random weights only when allowed."""
    path = resolve_weights(weights)
    if path is None and not allow_random:
        raise ValueError(f"voice {name!r}: an AR voice needs a weights file (none configured or packaged)")
    if path is not None and not path.is_file():
        raise ValueError(f"voice {name!r}: AR weights file {str(path)!r} not found")
    if path is not None:
        model = load_model(path, device)
    else:
        model = ArAcousticModel(ArConfig()).to(device).eval()
    return ArBackend(name, voice, model, max_slots, path)
