"""Static per-slot key/value cache for continuous batching of AR decode steps.

The buffers are allocated once (gpt-fast style static cache) with shape
``[n_layers, max_slots, n_heads, max_steps, head_dim]``. Unlike a single shared
``input_pos``, every slot keeps its own position, so a decode step may mix slots
that joined at different times. Bookkeeping is mirrored on the host (a Python
list) so range checks and the attention span never force a device sync.

Shape legend: L layers, N slots, H heads, T max_steps, Dh head_dim,
B slots in the current step, T' attended span (<= T).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

SlotsLike = Sequence[int] | Tensor


class CacheCapacityError(RuntimeError):
    """A slot tried to write past the static cache's ``max_steps`` positions."""


class StaticKVCache:
    """Static K/V buffers plus per-slot positions.

    Args:
        n_layers, max_slots, n_heads, max_steps, head_dim: buffer geometry.
        device, dtype: where/how the buffers live.
        span_bucket: the attended span T' is max(pos)+1 rounded up to this
            multiple (fewer distinct shapes; a fixed ``max_steps`` span would
            be CUDA-graph friendly but reads the whole buffer every step).
    """

    def __init__(
        self,
        n_layers: int,
        max_slots: int,
        n_heads: int,
        max_steps: int,
        head_dim: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        span_bucket: int = 64,
    ) -> None:
        shape = (n_layers, max_slots, n_heads, max_steps, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # [L, N, H, T, Dh]
        self.v = torch.zeros(shape, device=device, dtype=dtype)  # [L, N, H, T, Dh]
        self.pos = torch.zeros(max_slots, dtype=torch.long, device=device)  # [N] device mirror
        self.pos_host = [0] * max_slots  # host mirror of self.pos
        self.max_slots = max_slots
        self.max_steps = max_steps
        self.span_bucket = max(1, span_bucket)

    @property
    def device(self) -> torch.device:
        return self.k.device

    # ---- slot bookkeeping -------------------------------------------------

    def slot_list(self, slots: SlotsLike) -> list[int]:
        """Validate ``slots`` (distinct, in range) and return them as ints."""
        out = slots.tolist() if isinstance(slots, Tensor) else [int(s) for s in slots]
        if not out:
            raise ValueError("decode step needs at least one slot")
        if len(set(out)) != len(out):
            raise ValueError(f"duplicate slots in one step: {out}")
        bad = [s for s in out if not 0 <= s < self.max_slots]
        if bad:
            raise IndexError(f"slots {bad} out of range [0, {self.max_slots})")
        return out

    def index(self, slots: list[int]) -> Tensor:
        """Slot ids as a device index tensor [B]."""
        return torch.tensor(slots, dtype=torch.long, device=self.device)

    def check_room(self, slots: list[int]) -> None:
        """Raise if any slot has no free position left for one more step."""
        full = [(s, self.pos_host[s]) for s in slots if self.pos_host[s] >= self.max_steps]
        if full:
            raise CacheCapacityError(
                f"slot(s) at position >= max_steps={self.max_steps}: {full} "
                "(sequence longer than the static cache; raise ArConfig.max_steps)"
            )

    def positions(self, idx: Tensor) -> Tensor:
        """Current position of each slot in ``idx`` [B] -> [B] (long, device)."""
        return self.pos.index_select(0, idx)

    def span(self, slots: list[int]) -> int:
        """Attended span T': covers every slot's current position, bucketed."""
        need = max(self.pos_host[s] for s in slots) + 1
        b = self.span_bucket
        return min(self.max_steps, -(-need // b) * b)

    def advance(self, slots: list[int], idx: Tensor) -> None:
        """Move each slot one position forward (host and device mirrors)."""
        for s in slots:
            self.pos_host[s] += 1
        self.pos.index_add_(0, idx, torch.ones_like(idx))

    def reset(self, slot: int) -> None:
        """Zero the slot's K/V and position, so no stale values can leak."""
        self.k[:, slot].zero_()
        self.v[:, slot].zero_()
        self.pos[slot] = 0
        self.pos_host[slot] = 0

    # ---- K/V access ---------------------------------------------------------

    def write(self, layer: int, idx: Tensor, pos: Tensor, k: Tensor, v: Tensor) -> None:
        """Store one step: k, v [B, H, Dh] at (slot idx[b], position pos[b])."""
        self.k[layer][idx, :, pos] = k.to(self.k.dtype)  # [N, H, T, Dh][B, :, B] -> [B, H, Dh]
        self.v[layer][idx, :, pos] = v.to(self.v.dtype)

    def gather(self, layer: int, slots: list[int], idx: Tensor, span: int) -> tuple[Tensor, Tensor]:
        """K/V of the step's slots over the first ``span`` positions -> 2 x [B, H, T', Dh].

        A run of consecutive ascending slots is returned as a view (no copy);
        otherwise advanced indexing copies (on CPU much faster than index_select
        for these 5-d buffers).
        """
        first = slots[0]
        if slots == list(range(first, first + len(slots))):
            rows = slice(first, first + len(slots))
            return self.k[layer, rows, :, :span], self.v[layer, rows, :, :span]
        return self.k[layer, idx, :, :span], self.v[layer, idx, :, :span]

    def attn_mask(self, pos: Tensor, span: int) -> Tensor:
        """Boolean mask [B, 1, 1, T']: row b may attend to cache positions <= pos[b]."""
        t = torch.arange(span, device=pos.device)  # [T']
        return (t[None, :] <= pos[:, None])[:, None, None, :]
