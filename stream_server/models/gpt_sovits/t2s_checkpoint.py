"""GPT-SoVITS "s1" (T2S/GPT) checkpoints: read, check, build the model.

File format (upstream ``s1_train.py`` / ``process_ckpt``): a torch pickle of
``{"weight": {"model.<param>": float16 tensor}, "config": dict (the training yaml), "info": str}``.
The pickle is read with ``torch.load(weights_only=True)``: it only admits plain containers,
numbers, strings and tensors, so a file that would run code when unpickled is refused, not run.
A file that is missing, unreadable or no checkpoint is refused with one message that quotes none
of it (not its bytes, not torch's reading error).

Only v2 is supported (phoneme_vocab_size 732; later s1 files, e.g. s1v3, share the layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .t2s_model import T2SConfig, T2SModel

SUPPORTED_PHONEME_VOCAB = 732  # v2 symbol table (text/symbols2.py)
KNOWN_PHONEME_VOCAB: dict[object, str] = {512: "v1", 732: "v2"}  # looked up with what the config says
KEY_PREFIX = "model."  # the Lightning wrapper's attribute name
S1V2_CONFIG = T2SConfig()  # the released s1v2 geometry: dim 512, 16 heads, 24 layers


class T2SCheckpointError(ValueError):
    """The file is not a loadable (v2) GPT-SoVITS s1 checkpoint; the message says why."""


@dataclass(frozen=True)
class T2SCheckpoint:
    config: T2SConfig
    state_dict: dict[str, Tensor]  # upstream parameter names without the "model." prefix
    info: str
    raw_config: dict  # the checkpoint's own config dict, as stored


def read_checkpoint(path: str | Path) -> T2SCheckpoint:
    """Read and check an s1 ``.ckpt`` (nothing in it is executed)."""
    blob = _safe_load(Path(path))
    if not (isinstance(blob, dict) and isinstance(blob.get("weight"), dict) and isinstance(blob.get("config"), dict)):
        raise T2SCheckpointError(f"{path}: not an s1 checkpoint (expected a dict with 'weight' and 'config')")
    config = config_from_dict(blob["config"], path)
    weights = {k.removeprefix(KEY_PREFIX): v for k, v in blob["weight"].items()
               if isinstance(k, str) and isinstance(v, Tensor)}
    return T2SCheckpoint(config, weights, str(blob.get("info", "")), blob["config"])


def config_from_dict(raw: dict, path: str | Path = "<config>") -> T2SConfig:
    """The ``config["model"]`` section -> T2SConfig; refuses anything but v2."""
    m = raw.get("model")
    if not isinstance(m, dict):
        raise T2SCheckpointError(f"{path}: config has no 'model' section")
    phones = m.get("phoneme_vocab_size")
    if phones != SUPPORTED_PHONEME_VOCAB:
        version = KNOWN_PHONEME_VOCAB.get(phones, "unknown version")
        raise T2SCheckpointError(
            f"{path}: phoneme_vocab_size {phones} ({version}) is not supported; only GPT-SoVITS v2 "
            f"s1 checkpoints (phoneme_vocab_size {SUPPORTED_PHONEME_VOCAB}) are"
        )
    try:
        dims = {k: int(m[k]) for k in ("vocab_size", "embedding_dim", "hidden_dim", "head", "n_layer", "EOS")}
    except (KeyError, TypeError, ValueError) as e:
        raise T2SCheckpointError(f"{path}: config['model'] lacks a usable {e}") from None
    if dims["embedding_dim"] != dims["hidden_dim"]:
        raise T2SCheckpointError(f"{path}: embedding_dim {dims['embedding_dim']} != hidden_dim {dims['hidden_dim']}")
    if dims["EOS"] != dims["vocab_size"] - 1:
        raise T2SCheckpointError(f"{path}: EOS {dims['EOS']} is not vocab_size - 1 ({dims['vocab_size'] - 1})")
    try:
        return T2SConfig(vocab_size=dims["vocab_size"], phoneme_vocab_size=phones, dim=dims["hidden_dim"],
                         n_heads=dims["head"], n_layers=dims["n_layer"])
    except ValueError as e:
        raise T2SCheckpointError(f"{path}: {e}") from None


def load_t2s(path: str | Path, dtype: torch.dtype = torch.float32,
             device: torch.device | str = "cpu") -> T2SModel:
    """Checkpoint -> T2SModel in eval mode, parameters in ``dtype`` (stored fp16 -> fp32 by default)."""
    ckpt = read_checkpoint(path)
    model = T2SModel(ckpt.config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(ckpt.state_dict))
    unexpected = sorted(set(ckpt.state_dict) - set(expected))
    if missing or unexpected:
        raise T2SCheckpointError(f"{path}: weights do not match the v2 T2S layout; missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]}")
    wrong = [(k, tuple(v.shape)) for k, v in ckpt.state_dict.items() if v.shape != expected[k].shape]
    if wrong:
        raise T2SCheckpointError(f"{path}: weight shapes disagree with config['model']: {wrong[:5]}")
    model.load_state_dict({k: v.to(torch.float32) for k, v in ckpt.state_dict.items()})
    return _ready(model, dtype, device)


def random_t2s(config: T2SConfig = S1V2_CONFIG, seed: int = 0, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> T2SModel:
    """Random-weight model (default: real s1v2 size, ~77.6 M parameters), for benchmarks only."""
    model = T2SModel(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("alpha") or (p.dim() == 1 and "norm" in name):
                p.fill_(1.0)
            elif p.dim() == 1:
                p.zero_()
            else:
                p.normal_(0.0, 0.02, generator=gen)
    return _ready(model, dtype, device)


def _ready(model: T2SModel, dtype: torch.dtype, device: torch.device | str) -> T2SModel:
    model = model.to(device=device, dtype=dtype).eval()
    model.requires_grad_(False)
    return model


NOT_A_CHECKPOINT = (
    "refused: not a readable s1 checkpoint (a torch file of plain containers and tensors; one whose "
    "pickle needs more, which could run code, is not loaded)"
)


def _safe_load(path: Path) -> object:
    try:
        if not path.is_file():
            raise T2SCheckpointError(f"{path}: {NOT_A_CHECKPOINT}")
        return torch.load(path, map_location="cpu", weights_only=True)
    except T2SCheckpointError:
        raise
    except Exception:  # noqa: BLE001 - whatever torch or its unpickler make of a file that is none
        raise T2SCheckpointError(f"{path}: {NOT_A_CHECKPOINT}") from None
