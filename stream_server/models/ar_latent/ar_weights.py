"""AR voice weights on disk.

File format (torch.save, loadable with weights_only=True):
    {"format": "stream_server.ar_voice", "config": ArConfig fields,
     "state_dict": fp16 tensors, "meta": free-form training facts}
Parameters are stored in fp16 (half the size) and loaded into fp32 (or the
serving dtype). A bare state_dict (older files) loads with the default config.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from importlib import resources
from pathlib import Path

import torch

from .ar_acoustic import ArAcousticModel, ArConfig

FORMAT = "stream_server.ar_voice"
PACKAGED_VOICE = "joe_ar.pt"  # beside this module


def packaged_weights_path() -> Path:
    """The AR voice weights shipped with the package."""
    return Path(str(resources.files(__package__).joinpath(PACKAGED_VOICE)))


def resolve_weights(weights: str | Path | None) -> Path | None:
    """A voice's configured weights file; None means the packaged one (if it is there).
    Returns None when there is no file at all (random weights, benchmarks only)."""
    if weights is not None:
        return Path(weights)
    path = packaged_weights_path()
    return path if path.is_file() else None


def save_weights(model: ArAcousticModel, path: Path, meta: dict | None = None) -> None:
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "config": asdict(model.cfg), "state_dict": state, "meta": meta or {}}, path)


def read_weights(path: Path | str) -> tuple[ArConfig, dict[str, torch.Tensor], dict]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(blob, dict) and blob.get("format") == FORMAT:
        known = {f.name for f in fields(ArConfig)}
        cfg = ArConfig(**{k: v for k, v in blob["config"].items() if k in known})
        return cfg, blob["state_dict"], blob.get("meta", {})
    return ArConfig(), blob, {}


def load_model(path: Path | str, device: str | torch.device = "cpu") -> ArAcousticModel:
    """Model in eval mode, fp32 parameters, on ``device``."""
    cfg, state, _ = read_weights(path)
    model = ArAcousticModel(cfg)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval()
