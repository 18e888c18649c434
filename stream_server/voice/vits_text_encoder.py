"""VITS prior text encoder: phoneme embedding -> relative-position transformer -> (m, logs).

Inference only, one unpadded sequence at a time (batch of 1, no masks needed).
Checkpoint names (``enc_p.*``) are mapped onto this module in ``load_piper``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .onnx_weights import WeightBag


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a [B, C, T] tensor."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, 2), self.weight.shape, self.weight, self.bias, self.eps)
        return y.transpose(1, 2)

    def load_piper(self, bag: WeightBag) -> None:
        bag.into(self.weight, "gamma")
        bag.into(self.bias, "beta")


def _relative_slots(length: int, window: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Index maps between absolute [T, T] and banded [T, 2W+1] attention layouts.

    to_band[i, r] = key position i + r - W (clamped), valid where 0 <= i + r - W < T;
    from_band[i, j] = slot j - i + W (clamped), valid where |j - i| <= W.
    """
    pos = torch.arange(length, device=device)
    rel = torch.arange(-window, window + 1, device=device)
    to_band = (pos[:, None] + rel[None, :]).clamp(0, length - 1)  # [T, 2W+1]
    from_band = (pos[None, :] - pos[:, None] + window).clamp(0, 2 * window)  # [T, T]
    return to_band, from_band


def _band_valid(length: int, window: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    pos = torch.arange(length, device=device)
    rel = torch.arange(-window, window + 1, device=device)
    key = pos[:, None] + rel[None, :]
    band_ok = (key >= 0) & (key < length)  # [T, 2W+1]
    abs_ok = (pos[None, :] - pos[:, None]).abs() <= window  # [T, T]
    return band_ok, abs_ok


class RelativeSelfAttention(nn.Module):
    """Multi-head self-attention with learned relative-position key/value terms (window +-W)."""

    def __init__(self, channels: int, heads: int, window: int):
        super().__init__()
        self.heads = heads
        self.head_dim = channels // heads
        self.window = window
        self.q = nn.Conv1d(channels, channels, 1)
        self.k = nn.Conv1d(channels, channels, 1)
        self.v = nn.Conv1d(channels, channels, 1)
        self.out = nn.Conv1d(channels, channels, 1)
        # one table shared by all heads: [2W+1, head_dim]
        self.rel_key = nn.Parameter(torch.zeros(2 * window + 1, self.head_dim))
        self.rel_value = nn.Parameter(torch.zeros(2 * window + 1, self.head_dim))

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape  # [B, C, T] -> [B, H, T, D]
        return x.view(b, self.heads, self.head_dim, t).transpose(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        q = self._split_heads(self.q(x)) / math.sqrt(self.head_dim)
        k = self._split_heads(self.k(x))
        v = self._split_heads(self.v(x))
        to_band, from_band = _relative_slots(t, self.window, x.device)
        band_ok, abs_ok = _band_valid(t, self.window, x.device)

        content = q @ k.transpose(-1, -2)  # [B, H, T, T]
        rel_logits = q @ self.rel_key.t()  # [B, H, T, 2W+1]
        position = torch.gather(rel_logits, 3, from_band.expand(b, self.heads, t, t))
        probs = torch.softmax(content + position * abs_ok, dim=-1)  # [B, H, T, T]

        mixed = probs @ v  # [B, H, T, D]
        banded = torch.gather(probs, 3, to_band.expand(b, self.heads, t, -1)) * band_ok
        mixed = mixed + banded @ self.rel_value  # [B, H, T, 2W+1] @ [2W+1, D]
        return self.out(mixed.transpose(2, 3).reshape(b, c, t))

    def load_piper(self, bag: WeightBag) -> None:
        for mine, theirs in ((self.q, "conv_q"), (self.k, "conv_k"), (self.v, "conv_v"), (self.out, "conv_o")):
            bag.conv(mine, theirs)
        # piper stores the shared tables as [1, 2W+1, D] (one "head group")
        bag.into(self.rel_key.unsqueeze(0), "emb_rel_k")
        bag.into(self.rel_value.unsqueeze(0), "emb_rel_v")


class ConvFeedForward(nn.Module):
    """Two same-padded convolutions with a ReLU between them."""

    def __init__(self, channels: int, hidden: int, kernel: int):
        super().__init__()
        self.expand = nn.Conv1d(channels, hidden, kernel, padding=kernel // 2)
        self.contract = nn.Conv1d(hidden, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.contract(torch.relu(self.expand(x)))

    def load_piper(self, bag: WeightBag) -> None:
        # piper pads explicitly (F.pad) before these convs, so the graph's nodes have pads 0
        bag.into(self.expand.weight, "conv_1.weight")
        bag.into(self.expand.bias, "conv_1.bias")
        bag.into(self.contract.weight, "conv_2.weight")
        bag.into(self.contract.bias, "conv_2.bias")


class EncoderBlock(nn.Module):
    """Post-norm transformer block: x = LN(x + attn(x)); x = LN(x + ffn(x))."""

    def __init__(self, channels: int, heads: int, ffn_hidden: int, ffn_kernel: int, window: int):
        super().__init__()
        self.attn = RelativeSelfAttention(channels, heads, window)
        self.attn_norm = ChannelLayerNorm(channels)
        self.ffn = ConvFeedForward(channels, ffn_hidden, ffn_kernel)
        self.ffn_norm = ChannelLayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn_norm(x + self.attn(x))
        return self.ffn_norm(x + self.ffn(x))


class TextEncoder(nn.Module):
    """ids [B, T] -> hidden [B, H, T], m [B, C, T], logs [B, C, T]."""

    def __init__(
        self,
        vocab: int = 256,
        channels: int = 192,
        latent_channels: int = 192,
        heads: int = 2,
        layers: int = 6,
        ffn_hidden: int = 768,
        ffn_kernel: int = 3,
        window: int = 4,
    ):
        super().__init__()
        self.channels = channels
        self.latent_channels = latent_channels
        self.embed = nn.Embedding(vocab, channels)
        self.blocks = nn.ModuleList(
            EncoderBlock(channels, heads, ffn_hidden, ffn_kernel, window) for _ in range(layers)
        )
        self.to_stats = nn.Conv1d(channels, 2 * latent_channels, 1)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.embed(ids) * math.sqrt(self.channels)  # [B, T, H]
        x = x.transpose(1, 2)  # [B, H, T]
        for block in self.blocks:
            x = block(x)
        m, logs = self.to_stats(x).split(self.latent_channels, dim=1)
        return x, m, logs

    def load_piper(self, bag: WeightBag) -> None:
        """Load from names under ``enc_p.``."""
        bag.into(self.embed.weight, "emb.weight")
        enc = bag.scope("encoder")
        for i, block in enumerate(self.blocks):
            block.attn.load_piper(enc.scope(f"attn_layers.{i}"))
            block.attn_norm.load_piper(enc.scope(f"norm_layers_1.{i}"))
            block.ffn.load_piper(enc.scope(f"ffn_layers.{i}"))
            block.ffn_norm.load_piper(enc.scope(f"norm_layers_2.{i}"))
        bag.conv(self.to_stats, "proj")
