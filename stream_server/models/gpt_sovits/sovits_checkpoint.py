"""Read a GPT-SoVITS "s2" (SoVITS) checkpoint without running code from it.

An s2 ``.pth`` is a torch zip pickle of ``{"weight": fp16 state dict (no enc_q.*), "config":
utils.HParams, "info": str}``. Newer upstream versions overwrite the zip's leading ``PK`` with a
two-byte version tag. This module

* unpickles with an allow-list: ``utils.HParams`` becomes a plain attribute record, torch's tensor
  rebuild helpers and ``OrderedDict`` are allowed, every other global is refused; and no opcode that
  changes an existing object (BUILD, SETITEM(S), APPEND(S), ADDITEMS) may be applied to a function,
  class or module, so a pickle cannot rewrite an allowed global (``_rebuild_tensor_v2.__defaults__``)
  for every later load: only the containers, records and tensors it made itself are filled in;
* tells the SoVITS version from the header tag and the weights, and accepts v2, v2Pro and
  v2ProPlus (v2 plus a speaker-verification projection, ``sv_emb``/``ge_to512``/``prelu``; the Plus
  model differs only in its config: a wider decoder with a first upsampling kernel of 20);
* folds weight-norm pairs (``weight_g``/``weight_v``) into plain ``weight`` tensors, in float32.
"""

from __future__ import annotations

import collections
import io
import pickle
import types
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

SERVED = ("this server serves GPT-SoVITS v2, v2Pro and v2ProPlus voices (SoVITS weights such as s2G2333k.pth, "
          "s2Gv2Pro.pth or s2Gv2ProPlus.pth)")
SERVED_VERSIONS = ("v2", "v2Pro", "v2ProPlus")
PRO_VERSIONS = ("v2Pro", "v2ProPlus")
# One answer for a file that is missing, unreadable or no checkpoint at all: it quotes none of the
# file (not its first bytes, not torch's reading error), so naming any file learns nothing of it.
NOT_A_CHECKPOINT = "not a readable SoVITS (s2) checkpoint (a torch zip file)"

# upstream process_ckpt.py: tags that replace the zip's "PK" magic
_HEADER_TAGS = {
    b"00": "v1",
    b"01": "v2",
    b"02": "v3",
    b"03": "v3 (LoRA)",
    b"04": "v4 (LoRA)",
    b"05": "v2Pro",
    b"06": "v2ProPlus",
}
_V1_SYMBOLS = 322  # enc_p.text_embedding rows of a v1 model (v2 has 732)

# the only globals a checkpoint may name (torch resolves "*Storage" names before asking us)
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
}


class CheckpointError(ValueError):
    """The file is not a checkpoint this loader can read (format, version or content)."""


class HParamsRecord:
    """Stand-in for upstream's ``utils.HParams``: unpickling only fills ``__dict__``."""


def hparams_to_dict(record: HParamsRecord) -> dict:
    """Nested plain dicts (a function, not a method: a pickle can put any key in ``__dict__``)."""
    return {k: hparams_to_dict(v) if isinstance(v, HParamsRecord) else v for k, v in vars(record).items()}


class _RestrictedUnpickler(pickle._Unpickler):
    """Python's own unpickler (the C one runs its opcodes where they cannot be checked): globals
    from the allow-list only, and the opcodes that change an object already made checked against
    what they would change (_guard)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str):
        if (module, name) == ("utils", "HParams"):
            return HParamsRecord
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise CheckpointError(f"checkpoint refers to {module}.{name}, which is not allowed")
        return allowed


# (the unpickler's stack and metastack are not in its type stubs: Any)
def _below_mark(u: Any) -> object:
    """The object a MARK-delimited opcode (SETITEMS, APPENDS, ADDITEMS) fills."""
    return u.metastack[-1][-1]


def _guard(opcode: bytes, name: str, target: Callable[[Any], object]) -> None:
    """Refuse `opcode` when the object it would change is a function, a class or a module: what
    find_class gave is shared by the whole process (a BUILD on _rebuild_tensor_v2 could set its
    __defaults__ and spoil every checkpoint loaded afterwards)."""
    run = pickle._Unpickler.dispatch[opcode[0]]

    def checked(u: Any) -> None:
        try:
            obj = target(u)
        except IndexError:  # a malformed stack: the opcode itself fails as the pickle module says
            obj = None
        if callable(obj) or isinstance(obj, types.ModuleType):
            raise CheckpointError(
                f"checkpoint pickle changes {getattr(obj, '__qualname__', type(obj).__name__)} ({name}), "
                "which a checkpoint may not do")
        run(u)

    _RestrictedUnpickler.dispatch[opcode[0]] = checked


_guard(pickle.BUILD, "BUILD", lambda u: u.stack[-2])  # state on top, the object below it
_guard(pickle.SETITEM, "SETITEM", lambda u: u.stack[-3])  # dict, key, value
_guard(pickle.APPEND, "APPEND", lambda u: u.stack[-2])  # list, value
_guard(pickle.SETITEMS, "SETITEMS", _below_mark)
_guard(pickle.APPENDS, "APPENDS", _below_mark)
_guard(pickle.ADDITEMS, "ADDITEMS", _below_mark)


def _restricted_load(file, **kwargs):
    return _RestrictedUnpickler(file, **kwargs).load()


# torch.load takes a "pickle module": zip checkpoints go through its Unpickler, the legacy format
# also through its load (never reached: non-zip files are refused before torch.load)
_RESTRICTED_PICKLE = types.SimpleNamespace(
    __name__="restricted_pickle", Unpickler=_RestrictedUnpickler, load=_restricted_load
)


@dataclass(frozen=True)
class SovitsConfig:
    """Hyper-parameters of SynthesizerTrn v2 (defaults: upstream configs/s2.json)."""

    sampling_rate: int = 32000
    filter_length: int = 2048  # n_fft of the reference spectrogram
    hop_length: int = 640
    win_length: int = 2048
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 2, 2)
    gin_channels: int = 512
    semantic_frame_rate: str = "25hz"
    n_symbols: int = 732  # v2 phone vocabulary (text/symbols2.py)
    ssl_dim: int = 768  # HuBERT feature size, fixed by the architecture
    codebook_size: int = 1024
    style_bins: int = 704  # v2's style encoder reads spectrogram bins [:704]
    version: str = "v2"  # v2, v2Pro or v2ProPlus
    sv_channels: int = 0  # v2Pro: width of the speaker-verification embedding (20480); 0: none

    @property
    def spec_channels(self) -> int:
        return self.filter_length // 2 + 1

    @property
    def frames_per_token(self) -> int:
        return 2 if self.semantic_frame_rate == "25hz" else 1

    @property
    def samples_per_frame(self) -> int:
        n = 1
        for r in self.upsample_rates:
            n *= r
        return n

    @property
    def samples_per_token(self) -> int:
        return self.samples_per_frame * self.frames_per_token

    @classmethod
    def from_hparams(cls, hps: dict) -> SovitsConfig:
        """Build from the checkpoint's config (``data`` and ``model`` sections)."""
        merged = {**hps.get("data", {}), **hps.get("model", {})}
        known = {f.name for f in fields(cls)}
        values = {k: _freeze(v) for k, v in merged.items() if k in known}
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.semantic_frame_rate not in ("25hz", "50hz"):
            raise CheckpointError(f"semantic_frame_rate {self.semantic_frame_rate!r} is not 25hz/50hz")
        if self.resblock != "1":
            raise CheckpointError(f"resblock type {self.resblock!r}: only type '1' (used by v2) is built")
        if (self.version in PRO_VERSIONS) != (self.sv_channels > 0):
            raise CheckpointError(f"a {self.version} model needs a speaker-verification width (sv_channels) "
                                  "exactly when it is v2Pro/v2ProPlus")
        if self.samples_per_frame != self.hop_length:
            raise CheckpointError(
                f"upsample rates give {self.samples_per_frame} samples per frame, hop is {self.hop_length}")


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass
class SovitsCheckpoint:
    config: SovitsConfig
    weights: dict[str, torch.Tensor]  # float32, weight norm folded
    info: str = ""
    version: str = "v2"
    raw_config: dict = field(default_factory=dict)


def read_sovits_checkpoint(path: str | Path) -> SovitsCheckpoint:
    """Load an s2 ``.pth``; raises CheckpointError for anything but a v2 SoVITS checkpoint. The
    file is read whole only once its first bytes say it is one."""
    try:
        if not Path(path).is_file():  # a FIFO or a device would block or never end
            raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}")
        with open(path, "rb") as file:
            head = file.read(2)
            tag = "zip" if head == b"PK" else _HEADER_TAGS.get(head)
            if tag is None:
                raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}")
            if tag not in ("zip", *SERVED_VERSIONS):
                raise CheckpointError(
                    f"{path}: header tag {head.decode()} marks a GPT-SoVITS {tag} model; {SERVED}")
            data = b"PK" + file.read()  # upstream load_sovits_new restores the magic the same way
    except (OSError, ValueError) as exc:  # missing, a directory, unreadable; a NUL in the path
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}") from None
    try:
        blob = restricted_torch_load(data)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except Exception:  # noqa: BLE001 - whatever torch or the pickle module make of a file that is none
        raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}") from None
    try:
        return _from_blob(blob, str(path), None if tag == "zip" else tag)
    except CheckpointError:
        raise
    except Exception:  # noqa: BLE001 - a pickle of other shapes (cyclic records, odd types)
        raise CheckpointError(f"{path}: {NOT_A_CHECKPOINT}") from None


def restricted_torch_load(data: bytes):
    """torch.load of a zip checkpoint's bytes, with only the allow-listed globals (CPU tensors)."""
    # weights_only=False only because torch refuses a custom pickle module otherwise: the
    # restriction is ours (_RestrictedUnpickler), stricter than torch's weights-only allow-list
    return torch.load(io.BytesIO(data), map_location="cpu", pickle_module=_RESTRICTED_PICKLE,
                      weights_only=False)


def _from_blob(blob, where: str, tag: str | None = None) -> SovitsCheckpoint:
    if not isinstance(blob, dict) or "weight" not in blob or "config" not in blob:
        raise CheckpointError(f"{where}: expected a dict with 'weight' and 'config' (an s2 checkpoint)")
    hps, state = blob["config"], blob["weight"]
    if isinstance(hps, HParamsRecord):
        hps = hparams_to_dict(hps)
    if not isinstance(hps, dict) or not isinstance(state, dict):
        raise CheckpointError(f"{where}: 'config' and 'weight' must be an HParams/dict and a state dict")
    weights = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    version = detect_version(weights, hps)
    if version not in SERVED_VERSIONS:
        raise CheckpointError(f"{where}: a GPT-SoVITS {version} model; {SERVED}")
    if tag is not None and (tag in PRO_VERSIONS) != (version in PRO_VERSIONS):
        raise CheckpointError(f"{where}: the header says GPT-SoVITS {tag} but the weights are of a {version} "
                              "model (v2Pro/v2ProPlus have sv_emb.*, ge_to512.* and prelu.*, v2 none)")
    if tag in PRO_VERSIONS:
        version = tag  # the header names the exact one; the weights only tell the family
    return SovitsCheckpoint(
        config=_config(hps, weights, version),
        weights=fold_weight_norm(weights),
        info=str(blob.get("info", "")),
        version=version,
        raw_config=hps,
    )


def _config(hps: dict, weights: dict[str, torch.Tensor], version: str) -> SovitsConfig:
    """The config with the version this loader settled on and, for v2Pro, the SV width (upstream
    hard-codes 20480; here it is read from ``sv_emb.weight``)."""
    model = {**hps.get("model", {}), "version": version}
    sv = weights.get("sv_emb.weight")
    if sv is not None:
        model["sv_channels"] = int(sv.shape[1])
    return SovitsConfig.from_hparams({**hps, "model": model})


def detect_version(weights: dict[str, torch.Tensor], hps: dict) -> str:
    """Version from the weights; the config's ``model.version`` only adds the newer models that
    a stripped state dict might not show."""
    declared = str(hps.get("model", {}).get("version", "v2"))
    if any(k.startswith(("cfm.", "bridge.")) for k in weights):
        return declared if declared in ("v3", "v4") else "v3/v4"
    if any(k.startswith(("sv_emb.", "ge_to512.")) for k in weights):
        return declared if declared in PRO_VERSIONS else "v2Pro"
    emb = weights.get("enc_p.text_embedding.weight")
    if emb is None:
        raise CheckpointError("no enc_p.text_embedding.weight: not a SoVITS (s2) checkpoint")
    if emb.shape[0] == _V1_SYMBOLS:
        return "v1"
    if declared in PRO_VERSIONS:
        raise CheckpointError(f"the config says {declared} but there are no sv_emb.* weights (the "
                              "speaker-verification projection every v2Pro/v2ProPlus model has)")
    return declared if declared in ("v3", "v4") else "v2"


def fold_weight_norm(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float32 copy with every ``X.weight_g``/``X.weight_v`` pair replaced by ``X.weight``.

    Upstream's weight_norm uses dim 0 for Conv1d and ConvTranspose1d alike: the norm is taken over
    all other axes of ``weight_v``.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in weights.items():
        if key.endswith(".weight_v"):
            continue
        if key.endswith(".weight_g"):
            stem = key[: -len("_g")]
            v = weights.get(stem + "_v")
            if v is None:
                raise CheckpointError(f"{key} has no matching weight_v")
            v = v.float()
            norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
            out[stem] = v * (value.float() / norm)
            continue
        out[key] = value.float()
    orphans = [k for k in weights if k.endswith(".weight_v") and k[:-2] + "_g" not in weights]
    if orphans:
        raise CheckpointError(f"weight_v without weight_g: {orphans[:3]}")
    return out
