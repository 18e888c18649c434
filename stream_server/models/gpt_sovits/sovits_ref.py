"""The reference side of SoVITS v2: the linear spectrogram of the reference audio and the style
encoder (upstream ``ref_enc``, a MelStyleEncoder) that turns it into the speaker vector ``ge``;
for v2Pro/v2ProPlus also the speaker-verification term upstream adds to it (``SpeakerStyle``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..modules import module_list
from ..piper_vits.onnx_weights import WeightBag


def spectrogram(wav: torch.Tensor, n_fft: int = 2048, hop: int = 640, win: int = 2048) -> torch.Tensor:
    """wav [N] or [1, N] at 32 kHz -> magnitude [n_fft // 2 + 1, frames].

    As upstream's ``spectrogram_torch``: reflect padding of (n_fft - hop) / 2 on both sides, no
    centring, Hann window, magnitude sqrt(re^2 + im^2 + 1e-8) (the epsilon keeps silence finite).
    """
    y = wav.reshape(1, 1, -1).float()
    pad = (n_fft - hop) // 2
    y = F.pad(y, (pad, pad), mode="reflect")[:, 0]
    window = torch.hann_window(win, dtype=y.dtype, device=y.device)
    spec = torch.stft(y, n_fft, hop_length=hop, win_length=win, window=window, center=False,
                      return_complex=True)
    spec = torch.view_as_real(spec)  # [1, bins, frames, 2]
    return torch.sqrt(spec.pow(2).sum(-1) + 1e-8)[0]


def _mish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tanh(F.softplus(x))


class GatedConv(nn.Module):
    """x + a * sigmoid(b) with [a, b] = conv(x) (upstream Conv1dGLU)."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(x).split(self.channels, dim=1)
        return x + a * torch.sigmoid(b)


class StyleSelfAttention(nn.Module):
    """Multi-head self-attention over time, [B, T, C] layout, with a residual connection.

    Upstream scales the scores by sqrt(d_model), not sqrt(d_head): kept, the weights expect it.
    """

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(channels, channels)
        self.v = nn.Linear(channels, channels)
        self.out = nn.Linear(channels, channels)
        self.temperature = math.sqrt(channels)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape  # -> [B, H, T, C/H]
        return x.view(b, t, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / self.temperature, dim=-1)  # [B, H, T, T]
        mixed = (probs @ v).transpose(1, 2).reshape(x.shape)  # [B, T, C]
        return self.out(mixed) + x


class StyleEncoder(nn.Module):
    """Spectrogram [B, bins, T] -> style vector ge [B, out, 1] (mean over time)."""

    def __init__(self, bins: int = 704, out_channels: int = 512, hidden: int = 128, kernel: int = 5,
                 heads: int = 2):
        super().__init__()
        self.bins = bins
        self.spectral1 = nn.Linear(bins, hidden)
        self.spectral2 = nn.Linear(hidden, hidden)
        self.temporal = module_list(GatedConv(hidden, kernel) for _ in range(2))
        self.attn = StyleSelfAttention(hidden, heads)
        self.proj = nn.Linear(hidden, out_channels)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = spec[:, : self.bins].transpose(1, 2)  # [B, T, bins]
        x = _mish(self.spectral2(_mish(self.spectral1(x))))  # [B, T, hidden]
        x = x.transpose(1, 2)
        for block in self.temporal:
            x = block(x)
        x = self.proj(self.attn(x.transpose(1, 2)))  # [B, T, out]
        return x.mean(dim=1).unsqueeze(-1)

    def load(self, bag: WeightBag) -> None:
        """From upstream names under ``ref_enc.``."""
        _linear(bag, self.spectral1, "spectral.0.fc")
        _linear(bag, self.spectral2, "spectral.3.fc")
        for i, block in enumerate(self.temporal):
            _linear(bag, block.conv, f"temporal.{i}.conv1.conv")
        attn = self.attn
        for mine, theirs in ((attn.q, "w_qs"), (attn.k, "w_ks"), (attn.v, "w_vs"), (attn.out, "fc")):
            _linear(bag, mine, f"slf_attn.{theirs}")
        _linear(bag, self.proj, "fc.fc")


class SpeakerStyle(nn.Module):
    """v2Pro/v2ProPlus: ge = PReLU(ge + Linear(sv_emb)) per reference (upstream SynthesizerTrn's
    ``sv_emb`` and ``prelu``), before references are averaged; sv_emb is the reference clip's
    speaker-verification embedding (sv_model.py)."""

    def __init__(self, sv_channels: int, gin_channels: int):
        super().__init__()
        self.proj = nn.Linear(sv_channels, gin_channels)
        self.slope = nn.Parameter(torch.full((gin_channels,), 0.25))  # per-channel PReLU slope

    def forward(self, ge: torch.Tensor, sv_emb: torch.Tensor) -> torch.Tensor:
        """ge [1, gin, 1], sv_emb [sv] or [1, sv] -> [1, gin, 1]."""
        sv = self.proj(sv_emb.reshape(1, -1).to(ge)).unsqueeze(-1)
        return F.prelu(ge + sv, self.slope)

    def load(self, bag: WeightBag) -> None:
        """From upstream's top-level ``sv_emb.`` and ``prelu.`` names."""
        _linear(bag, self.proj, "sv_emb")
        bag.into(self.slope, "prelu.weight")


def _linear(bag: WeightBag, module: nn.Linear | nn.Conv1d, name: str) -> None:
    bag.weights(module, name)
