"""The AR voice's own vocoder weights on disk (iSTFT or Fourier vocoder).

File format (torch.save, loadable with weights_only=True):
    {"format": "stream_server.ar_vocoder", "arch": "istft" | "fourier", "config": its config's
     fields, "state_dict": fp16 tensors, "meta": free-form training facts}
Stored in fp16, loaded into fp32.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from .fourier_vocoder import FourierVocoder, FourierVocoderConfig
from .istft_vocoder import IstftVocoder, IstftVocoderConfig

FORMAT = "stream_server.ar_vocoder"
PACKAGED_VOCODER = "joe_ar_vocoder.pt"  # beside this module
Vocoder = IstftVocoder | FourierVocoder

ARCHS = {
    "istft": (IstftVocoder, IstftVocoderConfig.from_dict),
    "fourier": (FourierVocoder, lambda d: FourierVocoderConfig(**d)),
}


def packaged_vocoder_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(PACKAGED_VOCODER)))


def arch_of(model: Vocoder) -> str:
    return "istft" if isinstance(model, IstftVocoder) else "fourier"


def save_vocoder(model: Vocoder, path: Path, meta: dict | None = None) -> None:
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "arch": arch_of(model), "config": model.cfg.as_dict(), "state_dict": state,
            "meta": meta or {}}
    torch.save(blob, path)


def read_vocoder(path: Path | str) -> tuple[str, object, dict[str, torch.Tensor], dict]:
    """(arch, config, fp16 state_dict, meta)"""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not (isinstance(blob, dict) and blob.get("format") == FORMAT and blob.get("arch") in ARCHS):
        raise ValueError(f"{path}: not an AR vocoder weights file (format {FORMAT!r})")
    _, make_config = ARCHS[blob["arch"]]
    return blob["arch"], make_config(blob["config"]), blob["state_dict"], blob.get("meta", {})


def load_vocoder(path: Path | str, device: str | torch.device = "cpu") -> Vocoder:
    """Model in eval mode, fp32 parameters, on ``device``."""
    arch, cfg, state, _ = read_vocoder(path)
    model = ARCHS[arch][0](cfg)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval()
