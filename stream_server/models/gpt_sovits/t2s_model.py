"""GPT-SoVITS v2 text-to-semantic (T2S, "s1"/GPT) network, inference only.

A decoder-only transformer over one sequence ``xy``: x = phone embeddings + projected BERT
features + a sinusoidal position (learned scale ``alpha``), then y = semantic-token embeddings +
their own sinusoidal position (counted from 0 again). x attends to all of x (never to y); y
attends to all of x and causally to y. Layers are post-norm (residual, then LayerNorm) with a
fused q/k/v projection and a ReLU feed-forward of 4 x dim. ``ar_predict_layer`` (no bias) gives
logits over the semantic vocabulary, whose last entry is EOS.

Parameter names equal upstream's ``Text2SemanticDecoder`` state dict (without the ``model.``
prefix of the ``.ckpt``), so a checkpoint loads with a strict ``load_state_dict``.

The module holds no serving state: ``forward`` runs a whole prompt and returns its keys/values,
``step`` decodes one position for any subset of slots against a ``StaticKVCache`` that the caller
(``t2s_slots.T2SSlots``) owns.

Shape legend: P phones, Y prompt tokens, S = P + Y prompt positions, B slots in a step,
R attention rows of the step (see kv_cache), T' attended span, d dim, H heads, Dh head_dim,
L layers, V vocab_size, E bert_dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as Fn
from torch import Tensor, nn

from ...engine.kv_cache import CacheStepPlan, StaticKVCache
from ..modules import module_list


@dataclass(frozen=True)
class T2SConfig:
    """Geometry of the network. Defaults: the released s1v2 model (~77.6 M parameters)."""

    vocab_size: int = 1025  # V: 1024 semantic codes + EOS
    phoneme_vocab_size: int = 732  # v2 symbol table
    dim: int = 512  # d: embedding_dim == hidden_dim
    n_heads: int = 16
    n_layers: int = 24
    bert_dim: int = 1024  # E: BERT feature channels
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not a multiple of n_heads {self.n_heads}")
        if min(self.vocab_size, self.phoneme_vocab_size, self.n_layers) < 1:
            raise ValueError("vocab sizes and n_layers must be >= 1")

    @property
    def eos(self) -> int:
        return self.vocab_size - 1  # upstream asserts EOS == vocab_size - 1

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_dim(self) -> int:
        return 4 * self.dim  # upstream ignores the config's linear_units


def sine_table(positions: Tensor, dim: int) -> Tensor:
    """positions [n] -> [n, dim] float32: sin at even channels, cos at odd ones.

    Same float32 operations as upstream's table, so the values are bit-identical to it.
    """
    div = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) * -(math.log(10000.0) / dim)
    )  # [dim/2]
    ang = positions.to(torch.float32)[:, None] * div  # [n, dim/2]
    return torch.stack((torch.sin(ang), torch.cos(ang)), dim=-1).flatten(1)  # interleave -> [n, dim]


class TokenEmbedding(nn.Module):
    """An embedding table under upstream's parameter name (``word_embeddings``)."""

    def __init__(self, n: int, dim: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(n, dim)

    def forward(self, ids: Tensor) -> Tensor:
        return self.word_embeddings(ids)  # [...] -> [..., d]


class SinePosition(nn.Module):
    """x + alpha * sine_table(positions), alpha a learned scalar (x itself is not scaled)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        """x [n, d], positions [n] -> [n, d]."""
        return x + self.alpha * sine_table(positions, self.dim).to(x.dtype)


class SelfAttention(nn.Module):
    """Fused q/k/v input projection and output projection (upstream's names)."""

    def __init__(self, cfg: T2SConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x [..., n, d] -> q, k, v each [..., H, n, Dh] (chunks of the fused projection)."""
        *lead, n, _ = x.shape
        qkv = Fn.linear(x, self.in_proj_weight, self.in_proj_bias)  # [..., n, 3d]
        qkv = qkv.view(*lead, n, 3, self.n_heads, self.head_dim).movedim(-3, 0)  # [3, ..., n, H, Dh]
        q, k, v = (t.transpose(-3, -2) for t in qkv)
        return q, k, v

    def merge(self, o: Tensor) -> Tensor:
        """o [..., H, n, Dh] -> out_proj of the concatenated heads [..., n, d]."""
        o = o.transpose(-3, -2)  # [..., n, H, Dh]
        return self.out_proj(o.reshape(*o.shape[:-2], -1))


class T2SLayer(nn.Module):
    """Post-norm transformer layer: x = norm1(x + attn(x)); x = norm2(x + ffn(x))."""

    def __init__(self, cfg: T2SConfig) -> None:
        super().__init__()
        self.self_attn = SelfAttention(cfg)
        self.linear1 = nn.Linear(cfg.dim, cfg.ffn_dim)
        self.linear2 = nn.Linear(cfg.ffn_dim, cfg.dim)
        self.norm1 = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        self.norm2 = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)

    def _post(self, x: Tensor, attn: Tensor) -> Tensor:
        x = self.norm1(x + attn)
        return self.norm2(x + self.linear2(Fn.relu(self.linear1(x))))

    def forward(self, x: Tensor, allowed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Whole prompt: x [S, d], allowed [S, S] bool (True: row may attend to column)
        -> x [S, d], k, v [H, S, Dh] (to keep in the cache)."""
        q, k, v = self.self_attn.qkv(x)  # [H, S, Dh]
        o = Fn.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # [H, S, Dh]
        return self._post(x, self.self_attn.merge(o)), k, v

    def step(self, x: Tensor, cache: StaticKVCache, plan: CacheStepPlan, layer: int) -> Tensor:
        """One position per slot: x [B, d] -> [B, d]; attends to everything the slot cached."""
        q, k, v = self.self_attn.qkv(x[:, None])  # [B, H, 1, Dh]
        cache.write(layer, plan, k[:, :, 0], v[:, :, 0])
        kc, vc = cache.read(layer, plan)  # [R, H, T', Dh]
        o = Fn.scaled_dot_product_attention(
            plan.to_rows(q), kc.to(q.dtype), vc.to(q.dtype), attn_mask=plan.mask
        )  # [R, H, 1, Dh]
        return self._post(x, self.self_attn.merge(plan.from_rows(o))[:, 0])


class LayerStack(nn.Module):
    """Holds the layers under upstream's name ``h.layers``."""

    def __init__(self, cfg: T2SConfig) -> None:
        super().__init__()
        self.layers = module_list(T2SLayer(cfg) for _ in range(cfg.n_layers))


def prompt_mask(n_text: int, n_audio: int, device: torch.device | None = None) -> Tensor:
    """[S, S] bool, True where row may attend to column: x rows see all of x and none of y;
    y rows see all of x and y causally."""
    S = n_text + n_audio
    allowed = torch.ones(S, S, dtype=torch.bool, device=device).tril_()  # causal over xy
    allowed[:n_text, :n_text] = True  # x is bidirectional (and x never sees y: tril keeps that)
    return allowed


class T2SModel(nn.Module):
    """GPT-SoVITS v2 T2S decoder (inference). See the module docstring."""

    def __init__(self, cfg: T2SConfig = T2SConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.bert_proj = nn.Linear(cfg.bert_dim, d)
        self.ar_text_embedding = TokenEmbedding(cfg.phoneme_vocab_size, d)
        self.ar_text_position = SinePosition(d)
        self.ar_audio_embedding = TokenEmbedding(cfg.vocab_size, d)
        self.ar_audio_position = SinePosition(d)
        self.h = LayerStack(cfg)
        self.ar_predict_layer = nn.Linear(d, cfg.vocab_size, bias=False)

    def embed_text(self, phones: Tensor, bert: Tensor) -> Tensor:
        """phones [P] long, bert [E, P] -> x [P, d]."""
        x = self.ar_text_embedding(phones) + self.bert_proj(bert.transpose(0, 1).to(self.bert_proj.weight.dtype))
        return self.ar_text_position(x, torch.arange(phones.shape[0], device=phones.device))

    def embed_audio(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """tokens [n] long at audio positions [n] (0 = first prompt token) -> [n, d]."""
        return self.ar_audio_position(self.ar_audio_embedding(tokens), positions)

    def forward(self, phones: Tensor, bert: Tensor, prompt: Tensor) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """The whole prompt of one request: phones [P], bert [E, P], prompt [Y] (Y may be 0)
        -> logits [V] of the next token (the first one to generate), per-layer (k, v) [H, S, Dh]."""
        P, Y = phones.shape[0], prompt.shape[0]
        x = self.embed_text(phones, bert)  # [P, d]
        y = self.embed_audio(prompt, torch.arange(Y, device=prompt.device))  # [Y, d]
        xy = torch.cat((x, y), dim=0)  # [S, d]
        allowed = prompt_mask(P, Y, xy.device)
        kv = []
        for layer in self.h.layers:
            xy, k, v = layer(xy, allowed)
            kv.append((k, v))
        return self.ar_predict_layer(xy[-1]), kv

    def step(self, tokens: Tensor, audio_pos: Tensor, cache: StaticKVCache, plan: CacheStepPlan) -> Tensor:
        """One decode position for B slots: tokens [B] (each slot's last sampled token) at audio
        positions audio_pos [B] -> logits [B, V]. Writes/reads the slots' keys/values in ``cache``
        at the positions ``plan`` gives (the slot's count of cached positions)."""
        x = self.embed_audio(tokens, audio_pos)  # [B, d]
        for i, layer in enumerate(self.h.layers):
            x = layer.step(x, cache, plan, i)
        return self.ar_predict_layer(x)
