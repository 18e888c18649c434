"""Fourier vocoder weights on disk (the AR voice's default vocoder).

File format (torch.save, loadable with weights_only=True):
    {"format": "stream_server.fourier_vocoder", "config": FourierVocoderConfig fields,
     "state_dict": fp16 tensors, "meta": free-form training facts}
Stored in fp16, loaded into fp32.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from importlib import resources
from pathlib import Path

import torch

from .fourier_vocoder import FourierVocoder, FourierVocoderConfig

FORMAT = "stream_server.fourier_vocoder"
PACKAGED_VOCODER = "joe_ar_vocoder.pt"  # beside this module


def packaged_vocoder_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(PACKAGED_VOCODER)))


def save_vocoder(model: FourierVocoder, path: Path, meta: dict | None = None) -> None:
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "config": asdict(model.cfg), "state_dict": state, "meta": meta or {}}, path)


def read_vocoder(path: Path | str) -> tuple[FourierVocoderConfig, dict[str, torch.Tensor], dict]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not (isinstance(blob, dict) and blob.get("format") == FORMAT):
        raise ValueError(f"{path}: not a Fourier vocoder weights file (format {FORMAT!r})")
    known = {f.name for f in fields(FourierVocoderConfig)}
    cfg = FourierVocoderConfig(**{k: v for k, v in blob["config"].items() if k in known})
    return cfg, blob["state_dict"], blob.get("meta", {})


def load_vocoder(path: Path | str, device: str | torch.device = "cpu") -> FourierVocoder:
    """Model in eval mode, fp32 parameters, on ``device``."""
    cfg, state, _ = read_vocoder(path)
    model = FourierVocoder(cfg)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval()
