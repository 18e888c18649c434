"""Building the configured voices as engine backends, one model family per `kind`."""

from __future__ import annotations

from ..config import AppConfig
from ..engine.backend import ModelBackend
from .piper_vits.piper_voice import PiperVoice


def build_backends(cfg: AppConfig) -> dict[str, ModelBackend]:
    """Every voice of the config; a voice that cannot load stops start-up with its name."""
    device = cfg.engine.device
    slots = cfg.engine.max_slots
    pipers: list[PiperVoice] = []

    def piper() -> PiperVoice:  # shared: the VITS voice and the AR voice's front end; loaded once
        if not pipers:
            pipers.append(PiperVoice.from_package(device=device))
        return pipers[0]

    backends: dict[str, ModelBackend] = {}
    for name, section in cfg.voices.items():
        if section.kind == "gpt_sovits":
            try:
                from .gpt_sovits.loading import load_gpt_sovits_backend
            except ImportError as exc:
                raise ValueError(
                    f"voice {name!r}: GPT-SoVITS voices need the gpt-sovits extra "
                    f"(pip install 'stream_server[gpt-sovits]'): {exc}"
                ) from exc

            backends[name] = load_gpt_sovits_backend(name, section, section.max_slots or slots, device)
        elif section.kind == "piper_vits":
            from .piper_vits.backend import VitsBackend

            backends[name] = VitsBackend(name, piper(), slots)
        else:
            from .ar_latent.backend import load_ar_backend

            backends[name] = load_ar_backend(name, piper(), section.weights, section.allow_random_weights, slots, device)
    return backends
