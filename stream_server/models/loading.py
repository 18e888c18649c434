"""Building the configured voices as engine backends, one model family per `kind`."""

from __future__ import annotations

from ..config import AppConfig
from ..engine.backend import ModelBackend
from .piper_vits.voice_files import PiperVoices


def build_backends(cfg: AppConfig) -> dict[str, ModelBackend]:
    """Every voice of the config; a voice that cannot load stops start-up with its name."""
    device = cfg.engine.device
    slots = cfg.engine.max_slots
    # Piper models are shared: voices naming the same files (and the AR voice, which runs on the
    # packaged joe voice) get one loaded model.
    e = cfg.engine
    pipers = PiperVoices(device, e.vocoder_runtime, e.torch_threads, e.onnx_cache_dir, e.prefill_runtime)

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

            voice = pipers.load(name, section.model, section.config)
            backends[name] = VitsBackend(name, voice, slots, section.speaker)
        else:
            from .ar_latent.backend import load_ar_backend

            voice = pipers.packaged(name)
            ar = load_ar_backend(name, voice, section.weights, section.allow_random_weights, slots, device)
            if pipers.prefill_runtime == "onnxruntime":
                ar.use_onnx_prefill(pipers.onnx_cache_dir)
            backends[name] = ar
    return backends
