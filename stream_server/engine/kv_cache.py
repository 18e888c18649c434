"""Static per-slot key/value cache for continuous batching of AR decode steps.

The buffers are allocated once (gpt-fast style static cache) with shape
``[n_layers, max_slots, n_heads, max_steps, head_dim]``. Unlike a single shared
``input_pos``, every slot keeps its own position, so a decode step may mix slots
that joined at different times. Positions are mirrored on the host (a Python
list) so range checks and the attended span never force a device sync.

Reading the K/V of a step's slots (``plan`` once per step, ``read`` per layer):

* window: the slots lie in a narrow range ``[lo, hi)`` of slot ids -> attend over
  that range as a *view* of the buffer (no copy); rows of slots that are not in
  the step are computed and thrown away (they stay valid: each row attends at
  least to its own position 0).
* gather: otherwise copy the step's slots with ``index_select`` into a reusable
  workspace (allocating a fresh copy per layer is much slower on CPU).

Shape legend: L layers, N slots, H heads, T max_steps, Dh head_dim,
B slots in the step, R attention rows (window length or B), T' attended span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

SlotsLike = Sequence[int] | Tensor


class CacheCapacityError(RuntimeError):
    """A slot tried to write past the static cache's ``max_steps`` positions."""


@dataclass
class CacheStepPlan:
    """How one decode step addresses the cache; shared by all layers."""

    slots: list[int]  # B step slots (host)
    idx: Tensor  # [B] step slots (device)
    pos: Tensor  # [B] their current positions (device) = where this step writes
    span: int  # T' cache positions read
    lo: int | None  # first slot of the window read as a view; None -> gathered copy
    rows: Tensor  # [B] row of each step slot among the R attention rows
    mask: Tensor  # [R, 1, 1, T'] bool: row r may attend to positions <= its position

    @property
    def n_rows(self) -> int:
        return self.mask.shape[0]

    def to_rows(self, x: Tensor) -> Tensor:
        """[B, ...] -> [R, ...] (window: scatter into zero rows)."""
        if self.lo is None:
            return x
        return x.new_zeros((self.n_rows, *x.shape[1:])).index_copy_(0, self.rows, x)

    def from_rows(self, y: Tensor) -> Tensor:
        """[R, ...] -> [B, ...] in step-slot order."""
        return y if self.lo is None else y.index_select(0, self.rows)


class StaticKVCache:
    """Static K/V buffers plus per-slot positions.

    Args:
        n_layers, max_slots, n_heads, max_steps, head_dim: buffer geometry.
        device, dtype: where/how the buffers live.
        span_bucket: the attended span T' is max(pos)+1 rounded up to this
            multiple (fewer distinct shapes than exact lengths, much less
            reading than always ``max_steps``).
        window_ratio: read a slot-id window as a view when its length is
            <= window_ratio * B; else gather (0: always gather; inf: always window).
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
        window_ratio: float = 2.0,
    ) -> None:
        shape = (n_layers, max_slots, n_heads, max_steps, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # [L, N, H, T, Dh]
        self.v = torch.zeros(shape, device=device, dtype=dtype)  # [L, N, H, T, Dh]
        self.pos = torch.zeros(max_slots, dtype=torch.long, device=device)  # [N] device mirror
        self.pos_host = [0] * max_slots  # host mirror of self.pos
        self.max_slots, self.max_steps = max_slots, max_steps
        self.span_bucket = max(1, span_bucket)
        self.window_ratio = window_ratio
        self._ws: tuple[Tensor, Tensor] | None = None  # gather workspace, flat, lazily allocated

    @property
    def device(self) -> torch.device:
        return self.k.device

    # ---- slot bookkeeping -------------------------------------------------

    def slot_list(self, slots: SlotsLike) -> list[int]:
        """Validate ``slots`` (non-empty, distinct, in range) and return them as ints."""
        out = slots.tolist() if isinstance(slots, Tensor) else [int(s) for s in slots]
        if not out:
            raise ValueError("decode step needs at least one slot")
        if len(set(out)) != len(out):
            raise ValueError(f"duplicate slots in one step: {out}")
        bad = [s for s in out if not 0 <= s < self.max_slots]
        if bad:
            raise IndexError(f"slots {bad} out of range [0, {self.max_slots})")
        return out

    def check_room(self, slots: list[int]) -> None:
        """Raise if any slot has no free position left for one more step."""
        full = [(s, self.pos_host[s]) for s in slots if self.pos_host[s] >= self.max_steps]
        if full:
            raise CacheCapacityError(
                f"(slot, position) {full}: static cache holds max_steps={self.max_steps} "
                "steps per slot (sequence too long; raise ArConfig.max_steps)"
            )

    def advance(self, plan: CacheStepPlan) -> None:
        """Move each step slot one position forward (host and device mirrors)."""
        for s in plan.slots:
            self.pos_host[s] += 1
        self.pos.index_add_(0, plan.idx, torch.ones_like(plan.idx))

    def write_range(self, layer: int, slot: int, start: int, k: Tensor, v: Tensor) -> None:
        """Store one slot's k, v [H, S, Dh] at positions [start, start + S) (a prompt's prefill).

        Does not move the slot's position: call ``set_position`` once all layers are written.
        """
        end = start + k.shape[1]
        if start < 0 or end > self.max_steps:
            raise CacheCapacityError(
                f"slot {slot}: positions [{start}, {end}) do not fit the static cache's "
                f"max_steps={self.max_steps} steps per slot"
            )
        self.k[layer, slot, :, start:end] = k.to(self.k.dtype)  # [H, S, Dh]
        self.v[layer, slot, :, start:end] = v.to(self.v.dtype)

    def set_position(self, slot: int, pos: int) -> None:
        """Set where the slot's next step writes (e.g. the length of a prefilled prompt)."""
        if not 0 <= pos <= self.max_steps:
            raise CacheCapacityError(f"slot {slot}: position {pos} outside [0, max_steps={self.max_steps}]")
        self.pos[slot] = pos
        self.pos_host[slot] = pos

    def reset(self, slot: int) -> None:
        """Zero the slot's K/V and position, so no stale values can leak."""
        self.k[:, slot].zero_()
        self.v[:, slot].zero_()
        self.pos[slot] = 0
        self.pos_host[slot] = 0

    # ---- one step -----------------------------------------------------------

    def plan(self, slots: list[int]) -> CacheStepPlan:
        """Addressing for one step over validated ``slots`` (checks capacity)."""
        self.check_room(slots)
        idx = torch.tensor(slots, dtype=torch.long, device=self.device)  # [B]
        pos = self.pos.index_select(0, idx)  # [B]
        span = self._span(slots)
        lo, hi = min(slots), max(slots) + 1
        if hi - lo <= self.window_ratio * len(slots):
            return CacheStepPlan(slots, idx, pos, span, lo, idx - lo, self._mask(self.pos[lo:hi], span))
        rows = torch.arange(len(slots), device=self.device)
        return CacheStepPlan(slots, idx, pos, span, None, rows, self._mask(pos, span))

    def write(self, layer: int, plan: CacheStepPlan, k: Tensor, v: Tensor) -> None:
        """Store this step's k, v [B, H, Dh] at (slot idx[b], position pos[b])."""
        self.k[layer][plan.idx, :, plan.pos] = k.to(self.k.dtype)  # [N, H, T, Dh][B, :, B] -> [B, H, Dh]
        self.v[layer][plan.idx, :, plan.pos] = v.to(self.v.dtype)

    def read(self, layer: int, plan: CacheStepPlan) -> tuple[Tensor, Tensor]:
        """K/V for the step's attention rows -> 2 x [R, H, T', Dh].

        Gathered results live in a workspace overwritten by the next ``read``.
        """
        if plan.lo is not None:
            rows = slice(plan.lo, plan.lo + plan.n_rows)
            return self.k[layer, rows, :, : plan.span], self.v[layer, rows, :, : plan.span]
        out_k, out_v = self._workspace(plan)
        torch.index_select(self.k[layer, :, :, : plan.span], 0, plan.idx, out=out_k)
        torch.index_select(self.v[layer, :, :, : plan.span], 0, plan.idx, out=out_v)
        return out_k, out_v

    # ---- internals ----------------------------------------------------------

    def _span(self, slots: list[int]) -> int:
        """Attended span T': covers every step slot's position, bucketed."""
        need = max(self.pos_host[s] for s in slots) + 1
        return min(self.max_steps, -(-need // self.span_bucket) * self.span_bucket)

    @staticmethod
    def _mask(pos: Tensor, span: int) -> Tensor:
        """pos [R] -> [R, 1, 1, T'] bool, True where cache position <= pos[r]."""
        t = torch.arange(span, device=pos.device)  # [T']
        return (t[None, :] <= pos[:, None])[:, None, None, :]

    def _workspace(self, plan: CacheStepPlan) -> tuple[Tensor, Tensor]:
        """Contiguous [B, H, T', Dh] views into the reusable gather workspace."""
        if self._ws is None:
            n = self.k[0].numel()  # one layer: enough for any B <= N, T' <= T
            self._ws = (self.k.new_empty(n), self.v.new_empty(n))
        _, _, h, _, dh = self.k.shape
        shape = (len(plan.slots), h, plan.span, dh)
        n = shape[0] * h * plan.span * dh
        return self._ws[0][:n].view(shape), self._ws[1][:n].view(shape)
