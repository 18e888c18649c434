"""SoVITS v2 prior encoder (upstream ``enc_p``): semantic content + phones + style -> (m, logs).

    quantized [1, 768, F] --ssl_proj--> encoder_ssl --\
    phones [1, P] --embedding--> encoder_text ---------MRTE(+ge)--> encoder2 --(speed)--> proj

The transformer blocks are the same computation as Piper's VITS text encoder (post-norm,
relative-position self-attention with a shared +-4 window, conv feed-forward), so they are reused.
Inference only: the content frames are never padded (a batch's windows have one length), so
upstream's masks are all ones and drop out; only the phones of a batch's rows may be padded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..modules import ModuleSeq, module_list
from ..piper_vits.onnx_weights import WeightBag
from ..piper_vits.vits_text_encoder import EncoderBlock
from .sovits_checkpoint import SovitsConfig

_WINDOW = 4  # relative-attention window of upstream attentions.Encoder


def _blocks(cfg: SovitsConfig, layers: int) -> ModuleSeq[EncoderBlock]:
    return module_list(
        EncoderBlock(cfg.hidden_channels, cfg.n_heads, cfg.filter_channels, cfg.kernel_size, _WINDOW)
        for _ in range(layers)
    )


def _load_blocks(blocks: ModuleSeq[EncoderBlock], bag: WeightBag) -> None:
    """Upstream attentions.Encoder names (the same as Piper's)."""
    for i, block in enumerate(blocks):
        block.attn.load_piper(bag.scope(f"attn_layers.{i}"))
        block.attn_norm.load_piper(bag.scope(f"norm_layers_1.{i}"))
        block.ffn.load_piper(bag.scope(f"ffn_layers.{i}"))
        block.ffn_norm.load_piper(bag.scope(f"norm_layers_2.{i}"))


def _run(blocks: ModuleSeq[EncoderBlock], x: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        x = block(x)
    return x


class CrossAttention(nn.Module):
    """Plain multi-head attention of queries x [B, C, Tq] over memory c [B, C, Tk]."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = channels // heads
        self.q = nn.Conv1d(channels, channels, 1)
        self.k = nn.Conv1d(channels, channels, 1)
        self.v = nn.Conv1d(channels, channels, 1)
        self.out = nn.Conv1d(channels, channels, 1)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape  # [B, C, T] -> [B, H, T, D]
        return x.view(b, self.heads, self.head_dim, t).transpose(2, 3)

    def forward(self, x: torch.Tensor, c: torch.Tensor, c_mask: torch.Tensor | None = None) -> torch.Tensor:
        """c_mask [B, Tk] bool, False on padding: those keys get no weight (rows of a batch whose
        memories differ in length)."""
        q = self._split(self.q(x)) / math.sqrt(self.head_dim)
        k, v = self._split(self.k(c)), self._split(self.v(c))
        scores = q @ k.transpose(-1, -2)  # [B, H, Tq, Tk]
        if c_mask is not None:
            scores = scores.masked_fill(~c_mask[:, None, None, :], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        mixed = (probs @ v).transpose(2, 3).reshape(x.shape[0], -1, x.shape[2])
        return self.out(mixed)

    def load(self, bag: WeightBag) -> None:
        for mine, theirs in ((self.q, "conv_q"), (self.k, "conv_k"), (self.v, "conv_v")):
            bag.conv(mine, theirs)
        bag.conv(self.out, "conv_o")


class MRTE(nn.Module):
    """Multi-reference timbre encoder: each content frame attends over the phones; the speaker
    vector is added in the wide (512) space. Given the encoded phones, frame t's output depends on
    frame t only."""

    def __init__(self, channels: int = 192, hidden: int = 512, heads: int = 4):
        super().__init__()
        self.content_in = nn.Conv1d(channels, hidden, 1)
        self.text_in = nn.Conv1d(channels, hidden, 1)
        self.attn = CrossAttention(hidden, heads)
        self.out = nn.Conv1d(hidden, channels, 1)

    def forward(self, content: torch.Tensor, text: torch.Tensor, ge: torch.Tensor,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """content [B, C, F], text [B, C, P], ge [B, hidden, 1], text_mask [B, P] -> [B, C, F]."""
        c = self.content_in(content)
        return self.out(self.attn(c, self.text_in(text), text_mask) + c + ge)

    def load(self, bag: WeightBag) -> None:
        bag.conv(self.content_in, "c_pre")
        bag.conv(self.text_in, "text_pre")
        self.attn.load(bag.scope("cross_attention"))
        bag.conv(self.out, "c_post")


MRTE_WIDTH = 512  # upstream's MRTE hidden size, fixed whatever gin_channels is


class PriorEncoder(nn.Module):
    def __init__(self, cfg: SovitsConfig):
        super().__init__()
        self.latent_channels = cfg.inter_channels
        self.content_in = nn.Conv1d(cfg.ssl_dim, cfg.hidden_channels, 1)
        self.encoder_ssl = _blocks(cfg, cfg.n_layers // 2)
        self.embedding = nn.Embedding(cfg.n_symbols, cfg.hidden_channels)
        self.encoder_text = _blocks(cfg, cfg.n_layers)
        self.mrte = MRTE(cfg.hidden_channels, MRTE_WIDTH)
        # v2Pro/v2ProPlus (gin 1024): ge reaches MRTE through upstream's ge_to512; v2's gin is 512
        self.style_in = nn.Linear(cfg.gin_channels, MRTE_WIDTH) if cfg.sv_channels else None
        self.encoder2 = _blocks(cfg, cfg.n_layers // 2)
        self.proj = nn.Conv1d(cfg.hidden_channels, 2 * cfg.inter_channels, 1)

    def encode_text(self, phones: torch.Tensor) -> torch.Tensor:
        """phones [P] or [1, P] -> [1, C, P]; depends only on the sentence, so callers cache it."""
        phones = phones.reshape(1, -1).to(self.embedding.weight.device)
        x = self.embedding(phones).transpose(1, 2)  # no sqrt(C) scale, unlike Piper
        return _run(self.encoder_text, x)

    def hidden(self, quantized: torch.Tensor, text: torch.Tensor, ge: torch.Tensor,
               text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """quantized [B, 768, F] (50 Hz), encoded text [B, C, P], ge [B, gin, 1] -> [B, C, F]
        (v2Pro: ge goes through ge_to512 first, per row).
        Rows share F (self-attention has no mask); their phones may be padded (text_mask [B, P])."""
        y = _run(self.encoder_ssl, self.content_in(quantized))
        if self.style_in is not None:
            ge = self.style_in(ge.transpose(1, 2)).transpose(1, 2)
        return _run(self.encoder2, self.mrte(y, text, ge, text_mask))

    def stats(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[1, C, F] -> m, logs [1, inter, F]."""
        return self.proj(y).split(self.latent_channels, dim=1)

    @staticmethod
    def change_speed(y: torch.Tensor, speed: float) -> torch.Tensor:
        """Upstream's time stretch: linear resampling to int(F / speed) + 1 frames."""
        if speed == 1:
            return y
        return F.interpolate(y, size=int(y.shape[-1] / speed) + 1, mode="linear")

    def load(self, bag: WeightBag) -> None:
        """From upstream names under ``enc_p.``."""
        bag.conv(self.content_in, "ssl_proj")
        _load_blocks(self.encoder_ssl, bag.scope("encoder_ssl"))
        bag.into(self.embedding.weight, "text_embedding.weight")
        _load_blocks(self.encoder_text, bag.scope("encoder_text"))
        self.mrte.load(bag.scope("mrte"))
        _load_blocks(self.encoder2, bag.scope("encoder2"))
        bag.conv(self.proj, "proj")
