"""Autoregressive (AR) acoustic model: a small causal transformer that predicts
VITS latent frames (the HiFi-GAN decoder input, ``latent_dim`` channels) ``K =
frames_per_step`` frames per decode step, conditioned on per-frame features
(the text-encoder output expanded to frames by predicted durations).

Two ways to run the same weights:

* serving: ``step`` decodes one position for any subset of slots, each at its own
  position, against a static per-slot KV cache; the per-slot state (cache,
  conditioning, previous frames) is not part of the module: ``ar_slots.ArSlots``
  holds it, so one module serves the engine and any private decoding at once.
* training: ``forward_train`` runs the whole sequence causally in one pass with
  teacher forcing (previous *target* frames as input) and matches step-by-step
  decoding when the targets are the decoded frames.

Step t sees: prenet(frames of step t-1, flattened; zeros at t=0) + cond_step[t],
where cond_step[t] summarises conditioning frames [t*K, (t+1)*K). Its output is
head(transformer state) + cond_out[t], a per-frame linear read-out of the
conditioning stack: it gives the K frames of a step frame-exact phoneme
boundaries, which the one-vector-per-step path blurs (distillation converged
markedly faster with it). The AR path still carries what depends on the past.

Shape legend: B batch/slots, C cond_dim, F frames, S = ceil(F/K) steps,
K frames_per_step, D latent_dim, d d_model, H heads, Dh head_dim, T max_steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as Fn
from torch import Tensor, nn

from ...engine.kv_cache import CacheCapacityError, CacheStepPlan, StaticKVCache
from ..modules import module_list

__all__ = [
    "ArConfig",
    "ArAcousticModel",
    "CacheCapacityError",
    "stack_frames",
]


@dataclass(frozen=True)
class ArConfig:
    latent_dim: int = 192  # D: VITS latent channels (HiFi-GAN input), 86 frames/s
    cond_dim: int = 192  # C: per-frame conditioning channels
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    ffn_mult: int = 4
    frames_per_step: int = 3  # K
    max_steps: int = 1024  # T: per-sequence positions (steps) in the static cache
    cond_conv_layers: int = 4  # +-8 frames of look-ahead/behind with kernel 5
    cond_kernel: int = 5  # odd
    prenet_dropout: float = 0.5  # active in train() only; eval decoding is deterministic
    version: str = "ar-v2"

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError("d_model / n_heads must be an even integer (rotary embedding)")
        if self.cond_kernel % 2 == 0:
            raise ValueError("cond_kernel must be odd")
        if self.frames_per_step < 1 or self.max_steps < 1:
            raise ValueError("frames_per_step and max_steps must be >= 1")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def num_steps(self, n_frames: int) -> int:
        """S = ceil(F / K)."""
        return -(-n_frames // self.frames_per_step)


# ---------------------------------------------------------------------------
# rotary position embedding (by per-slot position)
# ---------------------------------------------------------------------------


def rope_tables(max_steps: int, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos, sin tables [T, Dh/2]."""
    inv = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # [Dh/2]
    ang = torch.arange(max_steps, dtype=torch.float64)[:, None] * inv[None, :]  # [T, Dh/2]
    return ang.cos().float(), ang.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate halves of x [B, H, T, Dh] by angles; cos/sin broadcast to [B, H, T, Dh/2]."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------


class CondEncoder(nn.Module):
    """Masked, non-causal conv stack over frames, then K frames -> one step vector."""

    def __init__(self, cfg: ArConfig) -> None:
        super().__init__()
        d, k = cfg.d_model, cfg.cond_kernel
        self.K = cfg.frames_per_step
        self.inp = nn.Conv1d(cfg.cond_dim, d, 1)
        self.convs = nn.ModuleList(nn.Conv1d(d, d, k, padding=k // 2) for _ in range(cfg.cond_conv_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(cfg.cond_conv_layers))
        self.group = nn.Linear(self.K * d, d)
        self.frame_out = nn.Conv1d(d, cfg.latent_dim, 1)

    def forward(self, cond: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """cond [B, C, F], mask [B, F] (valid prefix) -> steps [B, S, d], step_mask [B, S],
        frame read-out [B, S, K*D] (added to the AR head's output of each step).

        Padding is zeroed before every conv, which equals the conv's own zero
        padding at a sequence's end, so results don't depend on padding/batch.
        """
        return self.read_out(self.stack(cond, mask.to(cond.dtype)[:, None, :]), mask)

    def read_out(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The stack's output x [B, d, F] -> steps [B, S, d], step_mask [B, S], frame read-out [B, S, K*D]."""
        B, _, F = x.shape
        m = mask.to(x.dtype)[:, None, :]  # [B, 1, F]
        S = -(-F // self.K)
        pad = S * self.K - F
        out = Fn.pad(self.frame_out(x) * m, (0, pad)).transpose(1, 2).reshape(B, S, -1)  # [B, S, K*D]
        x = Fn.pad(x, (0, pad)).transpose(1, 2).reshape(B, S, -1)  # [B, S, K*d]
        step_mask = Fn.pad(mask.bool(), (0, pad)).view(B, S, self.K).any(-1)  # [B, S]
        return self.group(x), step_mask, out

    def stack(self, cond: Tensor, m: Tensor) -> Tensor:
        """The conv stack (most of the cost): cond [B, C, F], m [B, 1, F] (1 valid) -> [B, d, F]."""
        x = self.inp(cond * m) * m  # [B, d, F]
        for conv, norm in zip(self.convs, self.norms):
            y = norm(conv(x).transpose(1, 2)).transpose(1, 2)  # [B, d, F]
            x = (x + Fn.gelu(y)) * m
        return x


class Prenet(nn.Module):
    """Previous step's K frames (flattened) -> d_model."""

    def __init__(self, cfg: ArConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.net = nn.Sequential(
            nn.Linear(cfg.frames_per_step * cfg.latent_dim, d), nn.ReLU(), nn.Dropout(cfg.prenet_dropout),
            nn.Linear(d, d), nn.ReLU(), nn.Dropout(cfg.prenet_dropout),
        )

    def forward(self, prev: Tensor) -> Tensor:
        return self.net(prev)  # [..., K*D] -> [..., d]


class Attention(nn.Module):
    def __init__(self, cfg: ArConfig) -> None:
        super().__init__()
        self.h, self.dh = cfg.n_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def _qkv(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, T, d] -> q, k (rotated), v each [B, H, T, Dh]."""
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _out(self, y: Tensor) -> Tensor:
        B, _, T, _ = y.shape
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))  # [B, H, T, Dh] -> [B, T, d]

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Causal self-attention over the whole sequence: x [B, S, d] -> [B, S, d]."""
        q, k, v = self._qkv(x, cos, sin)
        return self._out(Fn.scaled_dot_product_attention(q, k, v, is_causal=True))

    def step(
        self, x: Tensor, cos: Tensor, sin: Tensor, cache: StaticKVCache, plan: CacheStepPlan, layer: int
    ) -> Tensor:
        """One position per slot: x [B, 1, d] -> [B, 1, d], via the static cache."""
        q, k, v = self._qkv(x, cos, sin)  # [B, H, 1, Dh]
        cache.write(layer, plan, k[:, :, 0], v[:, :, 0])
        kc, vc = cache.read(layer, plan)  # [R, H, T', Dh]
        y = Fn.scaled_dot_product_attention(
            plan.to_rows(q), kc.to(q.dtype), vc.to(q.dtype), attn_mask=plan.mask
        )  # [R, H, 1, Dh]
        return self._out(plan.from_rows(y))


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, cfg: ArConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(cfg)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_mult * d), nn.GELU(), nn.Linear(cfg.ffn_mult * d, d))

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x), cos, sin)
        return x + self.ffn(self.ln2(x))

    def step(
        self, x: Tensor, cos: Tensor, sin: Tensor, cache: StaticKVCache, plan: CacheStepPlan, layer: int
    ) -> Tensor:
        x = x + self.attn.step(self.ln1(x), cos, sin, cache, plan, layer)
        return x + self.ffn(self.ln2(x))


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------


class ArAcousticModel(nn.Module):
    rope_cos: Tensor  # buffers (registered below)
    rope_sin: Tensor

    def __init__(self, cfg: ArConfig = ArConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.cond_enc = CondEncoder(cfg)
        self.prenet = Prenet(cfg)
        self.blocks = module_list(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.frames_per_step * cfg.latent_dim)
        cos, sin = rope_tables(cfg.max_steps, cfg.head_dim)
        self.register_buffer("rope_cos", cos, persistent=False)  # [T, Dh/2]
        self.register_buffer("rope_sin", sin, persistent=False)
        # serving only: the conditioning stack's onnxruntime export (use_onnx_condition); None: torch
        self.onnx_condition: Callable[[Tensor], list[Tensor]] | None = None  # cond [1, C, F] -> [stack]

    def use_onnx_condition(self, cache_dir: Path | None = None, threads: int = 1) -> None:
        """Run the conditioning stack (once per sentence, at prefill) with onnxruntime from now on
        (engine.prefill_runtime: onnxruntime; 1.35x eager torch on a CPU), on every path that
        serves the model, so streamed and offline decoding stay equal."""
        from ..onnx_module import OnnxModule

        example = (torch.zeros(1, self.cfg.cond_dim, 24),)
        axes = {"cond": {2: "F"}, "stack": {2: "F"}}
        self.onnx_condition = OnnxModule(_ConditionStack(self.cond_enc), example, ["cond"], ["stack"], axes,
                                         "ar-condition", cache_dir, threads)

    # ---- conditioning ---------------------------------------------------

    def encode_condition(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """One sentence: cond [C, F] -> per-step conditioning [S, d], frame read-out [S, K*D]."""
        if cond.dim() != 2 or cond.shape[0] != self.cfg.cond_dim or cond.shape[1] < 1:
            raise ValueError(f"cond must be [cond_dim={self.cfg.cond_dim}, F>=1], got {tuple(cond.shape)}")
        mask = torch.ones(1, cond.shape[1], dtype=torch.bool, device=cond.device)
        if self.onnx_condition is not None and not self.training:
            (x,) = self.onnx_condition(cond[None])
            steps, _, out = self.cond_enc.read_out(x.to(cond.device), mask)
            return steps[0], out[0]
        steps, _, out = self.cond_enc(cond[None], mask)
        return steps[0], out[0]

    def encode_condition_batch(self, cond: Tensor, cond_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """cond [B, C, F], cond_mask [B, F] (valid prefix) -> steps [B, S, d], step_mask [B, S],
        frame read-out [B, S, K*D]."""
        return self.cond_enc(cond, cond_mask)

    # ---- one decode position (serving state: ar_slots.ArSlots) -------------

    def step(self, prev: Tensor, cond: Tensor, cond_out: Tensor, pos: Tensor,
             cache: StaticKVCache, plan: CacheStepPlan) -> Tensor:
        """One step for B slots, each at its own position: prev [B, K*D] (the slot's previous
        frames), cond [B, d] and cond_out [B, K*D] (its conditioning at this step), pos [B]
        -> frames [B, K*D]. Reads and writes the slots' keys/values in ``cache``."""
        x = (self.prenet(prev) + cond)[:, None]  # [B, 1, d]
        cos = self.rope_cos[pos][:, None, None]  # [B, 1, 1, Dh/2]
        sin = self.rope_sin[pos][:, None, None]
        for layer, blk in enumerate(self.blocks):
            x = blk.step(x, cos, sin, cache, plan, layer)
        return self.head(self.norm(x[:, 0])) + cond_out

    # ---- training ---------------------------------------------------------

    def forward_train(self, cond: Tensor, cond_mask: Tensor, target: Tensor) -> Tensor:
        """Teacher forcing: cond [B, C, F], cond_mask [B, F], target [B, D, F] -> pred [B, D, F].

        Padded frames of ``pred`` are zeroed (mask the loss with ``cond_mask`` too).
        """
        B, _, F = cond.shape
        steps, _, cond_out = self.encode_condition_batch(cond, cond_mask)  # [B, S, d], [B, S, K*D]
        S = steps.shape[1]
        if S > self.cfg.max_steps:
            raise CacheCapacityError(f"sequence needs {S} steps > max_steps={self.cfg.max_steps}")
        x = self.prenet(self._teacher_inputs(target, cond_mask, S)) + steps  # [B, S, d]
        cos, sin = self.rope_cos[:S], self.rope_sin[:S]  # [S, Dh/2]
        for blk in self.blocks:
            x = blk(x, cos, sin)
        pred = (self.head(self.norm(x)) + cond_out).view(B, S * self.cfg.frames_per_step, -1)  # [B, S*K, D]
        return pred[:, :F].transpose(1, 2) * cond_mask.to(pred.dtype)[:, None]  # [B, D, F]

    # ---- internals --------------------------------------------------------

    def _teacher_inputs(self, target: Tensor, mask: Tensor, S: int) -> Tensor:
        """target [B, D, F] -> previous-step frames [B, S, K*D] (zeros at step 0)."""
        B, _, F = target.shape
        t = target * mask.to(target.dtype)[:, None]
        t = Fn.pad(t, (0, S * self.cfg.frames_per_step - F)).transpose(1, 2).reshape(B, S, -1)  # [B, S, K*D]
        return Fn.pad(t[:, :-1], (0, 0, 1, 0))


class _ConditionStack(nn.Module):
    """The conditioning conv stack of one unpadded sentence, for export: cond [1, C, F] -> [1, d, F]."""

    def __init__(self, encoder: CondEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, cond: Tensor) -> Tensor:
        return self.encoder.stack(cond, torch.ones_like(cond[:, :1]))


def stack_frames(steps: Sequence[Tensor], n_frames: int) -> Tensor:
    """Decode outputs of one sequence, S x [K, D] -> latent [D, F] (drops end padding)."""
    return torch.cat(list(steps), dim=0)[:n_frames].T
