"""The speaker-verification embedding GPT-SoVITS v2Pro / v2ProPlus add to the SoVITS style vector.

Upstream (GPT_SoVITS/sv.py, eres2net/ERes2NetV2.py, from 3D-Speaker) runs ERes2NetV2 (baseWidth 24,
scale 4, expansion 4, blocks [3, 4, 6, 3], 64 channels) on the reference clip's Kaldi filterbank
(sv_fbank.py) and keeps ``forward3``: the fused last two stages, flattened over channels and
frequency and averaged over time ([1, 20480] for that model), not the pooled speaker embedding.

This is our own network with the same parameter names, so upstream's checkpoint
(``pretrained_eres2netv2w24s4ep4.ckpt``, a plain state dict) loads as is. Every width, the number
of blocks per stage and the split scale are read from the weights' shapes: a smaller model of the
same design loads with the same code. The pooling and ``seg_*`` layers of the checkpoint are not
used by ``forward3`` and are ignored. Batch norm runs in inference mode (running statistics).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .sv_fbank import MEL_BINS, fbank

_STAGES = 4
_CLIP = 20.0  # upstream's "ReLU" is a hardtanh to [0, 20] inside the blocks
_UNUSED = ("pool.", "seg_1.", "seg_bn_1.", "seg_2.")


class SpeakerModelError(ValueError):
    """The speaker-verification checkpoint is missing or not an ERes2NetV2 state dict."""


def _relu20(x: torch.Tensor) -> torch.Tensor:
    return F.hardtanh(x, 0.0, _CLIP)


def _conv(state: dict[str, torch.Tensor], key: str, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """A Conv2d shaped as its checkpoint weight (3x3 kernels padded to keep the size)."""
    out_ch, in_ch, k, _ = state[key + ".weight"].shape
    return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2, bias=bias)


def _bn(state: dict[str, torch.Tensor], key: str) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(state[key + ".weight"].shape[0])


class Fusion(nn.Module):
    """Attentional feature fusion (AFF): a learned per-position mix of two maps of equal shape."""

    def __init__(self, state: dict[str, torch.Tensor], key: str):
        super().__init__()
        att = f"{key}.local_att"
        self.local_att = nn.Sequential(
            _conv(state, f"{att}.0", bias=True), _bn(state, f"{att}.1"), nn.SiLU(),
            _conv(state, f"{att}.3", bias=True), _bn(state, f"{att}.4"),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weight = 1.0 + torch.tanh(self.local_att(torch.cat([x, y], dim=1)))  # in (0, 2)
        return x * weight + y * (2.0 - weight)


class Block(nn.Module):
    """Res2Net-style block: split into `scale` groups, each a 3x3 conv of the previous group's
    output added (or, in fused stages, AFF-mixed) to its own input."""

    def __init__(self, state: dict[str, torch.Tensor], key: str, stride: int):
        super().__init__()
        self.conv1, self.bn1 = _conv(state, f"{key}.conv1", stride), _bn(state, f"{key}.bn1")
        scale = sum(1 for k in state if k.startswith(f"{key}.convs.") and k.endswith(".weight"))
        self.width = state[f"{key}.convs.0.weight"].shape[0]
        self.convs = nn.ModuleList(_conv(state, f"{key}.convs.{i}") for i in range(scale))
        self.bns = nn.ModuleList(_bn(state, f"{key}.bns.{i}") for i in range(scale))
        self.fuse_models = nn.ModuleList(
            Fusion(state, f"{key}.fuse_models.{i}") for i in range(scale - 1)
            if f"{key}.fuse_models.{i}.local_att.0.weight" in state)
        self.conv3, self.bn3 = _conv(state, f"{key}.conv3"), _bn(state, f"{key}.bn3")
        self.shortcut = nn.Sequential()
        if f"{key}.shortcut.0.weight" in state:
            self.shortcut = nn.Sequential(_conv(state, f"{key}.shortcut.0", stride), _bn(state, f"{key}.shortcut.1"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.split(_relu20(self.bn1(self.conv1(x))), self.width, dim=1)
        outs: list[torch.Tensor] = []
        for i, group in enumerate(groups):
            if i == 0:
                sp = group
            elif self.fuse_models:
                sp = self.fuse_models[i - 1](sp, group)
            else:
                sp = sp + group
            sp = _relu20(self.bns[i](self.convs[i](sp)))
            outs.append(sp)
        out = self.bn3(self.conv3(torch.cat(outs, dim=1)))
        return _relu20(out + self.shortcut(x))


def _stage(state: dict[str, torch.Tensor], name: str, stride: int) -> nn.Sequential:
    count = len({k.split(".")[1] for k in state if k.startswith(name + ".")})
    if count == 0:
        raise KeyError(f"{name}.*")
    return nn.Sequential(*(Block(state, f"{name}.{i}", stride if i == 0 else 1) for i in range(count)))


class SpeakerEncoder(nn.Module):
    """ERes2NetV2 up to ``forward3``: filterbank [B, T, 80] -> [B, channels x 10]."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        self.conv1, self.bn1 = _conv(state, "conv1"), _bn(state, "bn1")
        self.layer1 = _stage(state, "layer1", 1)
        self.layer2 = _stage(state, "layer2", 2)
        self.layer3 = _stage(state, "layer3", 2)
        self.layer4 = _stage(state, "layer4", 2)
        self.layer3_ds = _conv(state, "layer3_ds", stride=2)
        self.fuse34 = Fusion(state, "fuse34")

    @property
    def dim(self) -> int:
        """Width of the embedding: the last stage's channels times the 80 bins / 8."""
        return self.layer3_ds.out_channels * (MEL_BINS // 8)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = feats.transpose(1, 2).unsqueeze(1)  # [B, 1, 80, T]
        out3 = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
        fused = self.fuse34(self.layer4(out3), self.layer3_ds(out3))  # [B, C, 10, T / 8]
        return fused.flatten(1, 2).mean(-1)

    @torch.no_grad()
    def embed(self, wav16k: torch.Tensor) -> torch.Tensor:
        """Mono audio [N] at 16 kHz -> [1, dim] (upstream's compute_embedding3)."""
        device = self.conv1.weight.device
        return self(fbank(wav16k.to(device)).unsqueeze(0))


def speaker_encoder_from_state(state: dict[str, torch.Tensor]) -> SpeakerEncoder:
    """Build and load; raises SpeakerModelError when a tensor is missing, extra or misshapen."""
    used = {k: v.float() for k, v in state.items() if isinstance(v, torch.Tensor) and not k.startswith(_UNUSED)}
    try:
        model = SpeakerEncoder(used)
        model.load_state_dict(used, strict=True)
    except (KeyError, RuntimeError, IndexError, ValueError) as exc:
        raise SpeakerModelError(f"not an ERes2NetV2 speaker-verification state dict ({exc})") from None
    return model.eval()


def load_speaker_encoder(path: str | Path, device: str = "cpu") -> SpeakerEncoder:
    """Upstream's ``pretrained_eres2netv2w24s4ep4.ckpt`` (read with torch's weights-only loader)."""
    p = Path(path)
    if not p.is_file():
        raise SpeakerModelError(f"speaker-verification model {str(p)!r} not found")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - whatever torch makes of a file that is no state dict
        raise SpeakerModelError(f"{str(p)!r}: not a readable torch state dict") from None
    if not isinstance(state, dict):
        raise SpeakerModelError(f"{str(p)!r}: not a state dict")
    try:
        return speaker_encoder_from_state(state).to(device)
    except SpeakerModelError as exc:
        raise SpeakerModelError(f"{str(p)!r}: {exc}") from None


UPSTREAM_SV_PATH = "GPT_SoVITS/pretrained_models/sv/pretrained_eres2netv2w24s4ep4.ckpt"  # sv.py's sv_path


def missing_speaker_model(version: str) -> SpeakerModelError:
    return SpeakerModelError(
        f"a GPT-SoVITS {version} model needs its speaker-verification model: set sv_weights in the voice's "
        f"config to upstream's pretrained_eres2netv2w24s4ep4.ckpt ({UPSTREAM_SV_PATH} in a GPT-SoVITS checkout)")


class SpeakerEmbedder:
    """The SV model of a voice's ``sv_weights``, loaded on first use (a v2 voice may never need
    it, unless its SoVITS weights are switched to v2Pro ones); callable as 16 kHz audio -> [1, dim]."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        self.path, self.device = Path(path), device
        self._model: SpeakerEncoder | None = None

    def load(self) -> SpeakerEncoder:
        if self._model is None:  # two threads may both load it once: harmless
            self._model = load_speaker_encoder(self.path, self.device)
        return self._model

    def __call__(self, wav16k: torch.Tensor) -> torch.Tensor:
        return self.load().embed(wav16k)
