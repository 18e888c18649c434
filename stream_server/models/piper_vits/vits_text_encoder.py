"""VITS prior text encoder: phoneme embedding -> relative-position transformer -> (m, logs).

Inference only, one unpadded sequence at a time (batch of 1, no masks needed).
Checkpoint names (``enc_p.*``) are mapped onto this module in ``load_piper``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..modules import module_list
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


def _relative_layout(length: int, window: int, device):
    """Index maps between the absolute [T, T] and the banded [T, 2W+1] attention layouts.

    key[i, r]  = key position i + r - W seen from query i through relative slot r;
    slot[i, j] = relative slot j - i + W of key j seen from query i.
    Returns both (clamped to valid indices) with the masks of where they are real.
    """
    pos = torch.arange(length, device=device)
    rel = torch.arange(-window, window + 1, device=device)
    key = pos[:, None] + rel[None, :]  # [T, 2W+1]
    slot = pos[None, :] - pos[:, None] + window  # [T, T]
    key_ok = (key >= 0) & (key < length)
    slot_ok = (slot >= 0) & (slot <= 2 * window)
    return key.clamp(0, length - 1), key_ok, slot.clamp(0, 2 * window), slot_ok


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
        key, key_ok, slot, slot_ok = _relative_layout(t, self.window, x.device)

        content = q @ k.transpose(-1, -2)  # [B, H, T, T]
        rel_logits = q @ self.rel_key.t()  # [B, H, T, 2W+1]
        position = torch.gather(rel_logits, 3, slot.expand(b, self.heads, t, t)) * slot_ok
        probs = torch.softmax(content + position, dim=-1)  # [B, H, T, T]

        mixed = probs @ v  # [B, H, T, D]
        banded = torch.gather(probs, 3, key.expand(b, self.heads, t, -1)) * key_ok
        mixed = mixed + banded @ self.rel_value  # [B, H, T, 2W+1] @ [2W+1, D]
        return self.out(mixed.transpose(2, 3).reshape(b, c, t))

    def load_piper(self, bag: WeightBag) -> None:
        projections = {"conv_q": self.q, "conv_k": self.k, "conv_v": self.v, "conv_o": self.out}
        for theirs, mine in projections.items():
            bag.conv(mine, theirs)
        # piper stores the shared tables as [1, 2W+1, D] (one "head group")
        bag.into(self.rel_key.unsqueeze(0), "emb_rel_k")
        bag.into(self.rel_value.unsqueeze(0), "emb_rel_v")


class ConvFeedForward(nn.Module):
    """Two same-padded convolutions with a ReLU between them."""

    def __init__(self, channels: int, hidden: int, kernel: int):
        super().__init__()
        assert kernel % 2 == 1, "symmetric 'same' padding needs an odd kernel"
        self.expand = nn.Conv1d(channels, hidden, kernel, padding=kernel // 2)
        self.contract = nn.Conv1d(hidden, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.contract(torch.relu(self.expand(x)))

    def load_piper(self, bag: WeightBag) -> None:
        # piper pads explicitly (F.pad) before these convs, so the graph's nodes have pads 0
        bag.weights(self.expand, "conv_1")
        bag.weights(self.contract, "conv_2")


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
        self.blocks = module_list(
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
