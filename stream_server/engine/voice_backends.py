"""The voices as engine backends: Piper VITS (non-autoregressive) and the AR acoustic model."""

from __future__ import annotations

import threading

import numpy as np
import torch

from ..model.ar_acoustic import ArAcousticModel
from ..model.ar_weights import decode_offline
from ..voice.piper_voice import PiperVoice, SynthesisParams
from .backend import PrefillOutput
from .requests import SynthesisOptions


def _params(options: SynthesisOptions) -> SynthesisParams:
    return SynthesisParams(
        noise_scale=options.noise_scale,
        length_scale=options.length_scale,
        noise_w=options.noise_w,
        seed=options.seed,
    )


class _VoiceBase:
    def __init__(self, name: str, voice: PiperVoice, max_slots: int) -> None:
        self.name = name
        self.voice = voice
        self.max_slots = max_slots
        self.sample_rate = voice.sample_rate
        self.hop_length = voice.hop_length
        self.latent_channels = voice.latent_channels

    def vocode(self, windows: torch.Tensor) -> torch.Tensor:
        return self.voice.decode(windows)

    def release(self, slot: int) -> None:
        pass


class VitsBackend(_VoiceBase):
    """Piper VITS: encoder, durations, prior sample and flow all at prefill."""

    def prefill(self, slot: int, text: str, options: SynthesisOptions) -> PrefillOutput:
        params = _params(options)
        enc = self.voice.encode(self.voice.phoneme_ids(text), params)  # as voice.latents()
        z = self.voice.flow_reverse(self.voice.prior_sample(enc, params))  # [C, F]
        return PrefillOutput(
            num_frames=int(z.shape[-1]), frames=z, word_frames=self.voice.word_frames(enc)
        )

    def decode_step(self, slots: list[int]) -> torch.Tensor:
        raise RuntimeError("a non-autoregressive voice has no decode step")

    def synthesize_offline(self, text: str, options: SynthesisOptions) -> np.ndarray:
        """Whole-sentence reference synthesis (what streaming must equal), float32."""
        return self.voice.synthesize(text, _params(options))


class ArBackend(_VoiceBase):
    """AR acoustic model conditioned on the voice's text encoder, decoded by its HiFi-GAN."""

    def __init__(self, name: str, voice: PiperVoice, model: ArAcousticModel, max_slots: int):
        super().__init__(name, voice, max_slots)
        self.model = model
        self._offline_model: ArAcousticModel | None = None
        self._offline_lock = threading.Lock()
        device = next(model.parameters()).device
        model.allocate(max_slots, device)

    def prefill(self, slot: int, text: str, options: SynthesisOptions) -> PrefillOutput:
        params = _params(options)
        enc = self.voice.encode(self.voice.phoneme_ids(text), params)
        self.model.prefill(slot, enc.m_frames)
        return PrefillOutput(
            num_frames=int(enc.m_frames.shape[-1]), frames=None, word_frames=self.voice.word_frames(enc)
        )

    def decode_step(self, slots: list[int]) -> torch.Tensor:
        return self.model.decode_step(slots)

    def release(self, slot: int) -> None:
        self.model.release(slot)

    def synthesize_offline(self, text: str, options: SynthesisOptions) -> np.ndarray:
        """Whole-sentence reference synthesis (what streaming must equal), float32.

        Runs a private copy of the model: the serving model's cache belongs to the engine thread.
        """
        with self._offline_lock:
            if self._offline_model is None:
                self._offline_model = type(self.model)(self.model.cfg)
                self._offline_model.load_state_dict(self.model.state_dict())
                self._offline_model.to(next(self.model.parameters()).device).eval()
            enc = self.voice.encode(self.voice.phoneme_ids(text), _params(options))
            z = decode_offline(self._offline_model, [enc.m_frames])[0]  # [D, F]
        return self.voice.decode(z[None])[0].cpu().numpy()
