"""Per-slot serving state of an ArAcousticModel: what continuous batching needs besides weights.

The static KV cache, each slot's step conditioning and frame read-out, its previous frames (the next
step's input) and its length live here, not in the nn.Module: the engine's backend owns one ArSlots
for its slots, and whole-sentence (offline) decoding builds a private one on the same module and
runs the very same `prefill` / `decode_step` / `release` code.

Shape legend as in ar_acoustic: N slots, T max_steps, d d_model, K frames_per_step, D latent_dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...engine.kv_cache import CacheCapacityError, CacheStepPlan, SlotsLike, StaticKVCache
from .ar_acoustic import ArAcousticModel, stack_frames


@dataclass(frozen=True)
class Conditioned:
    """One sentence's conditioning, ready for a slot: steps [S, d], frame_out [S, K*D], F frames."""

    steps: Tensor
    frame_out: Tensor
    n_frames: int


class ArSlots:
    """Serving state for ``max_slots`` slots (``dtype``: K/V storage dtype).

    ``span_bucket`` and ``window_ratio``: see ``StaticKVCache``.
    """

    def __init__(
        self,
        model: ArAcousticModel,
        max_slots: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        span_bucket: int = 64,
        window_ratio: float = 2.0,
    ) -> None:
        cfg, p = model.cfg, next(model.parameters())
        device = p.device if device is None else torch.device(device)
        self.model = model
        self.cache = StaticKVCache(
            cfg.n_layers, max_slots, cfg.n_heads, cfg.max_steps, cfg.head_dim, device, dtype, span_bucket, window_ratio
        )
        kd = cfg.frames_per_step * cfg.latent_dim
        self._cond = torch.zeros(max_slots, cfg.max_steps, cfg.d_model, device=device, dtype=p.dtype)  # [N, T, d]
        self._cond_out = torch.zeros(max_slots, cfg.max_steps, kd, device=device, dtype=p.dtype)  # [N, T, K*D]
        self._prev = torch.zeros(max_slots, kd, device=device, dtype=p.dtype)  # [N, K*D]
        self._n_steps = [0] * max_slots  # per-slot S (0 = free)
        self._n_frames = [0] * max_slots  # per-slot F

    @property
    def max_slots(self) -> int:
        return self.cache.max_slots

    @torch.inference_mode()
    def prefill(self, slot: int, cond: Tensor) -> int:
        """Load a sentence into ``slot``: cond [C, F]. Returns its number of steps S."""
        return self.load(slot, self.condition(cond))

    @torch.inference_mode()
    def condition(self, cond: Tensor) -> Conditioned:
        """A sentence's step conditioning, cond [C, F]: no slot state is touched, so any thread may
        compute it while the engine thread decodes (the heavy half of a prefill)."""
        steps, out = self.model.encode_condition(cond.to(self._cond.device, self._cond.dtype))  # [S, d], [S, K*D]
        if steps.shape[0] > self.model.cfg.max_steps:
            raise CacheCapacityError(f"sequence needs {steps.shape[0]} steps > max_steps={self.model.cfg.max_steps}")
        return Conditioned(steps, out, int(cond.shape[-1]))

    @torch.inference_mode()
    def load(self, slot: int, conditioned: Conditioned) -> int:
        """Put a conditioned sentence into ``slot`` (the engine thread). Returns its steps S."""
        self.cache.slot_list([slot])
        S = conditioned.steps.shape[0]
        self._reset(slot)
        self._cond[slot, :S] = conditioned.steps
        self._cond_out[slot, :S] = conditioned.frame_out
        self._n_steps[slot] = S
        self._n_frames[slot] = conditioned.n_frames
        return S

    @torch.inference_mode()
    def decode_step(self, slots: SlotsLike) -> Tensor:
        """One batched step for ``slots`` (distinct, any order) -> frames [B, K, D].

        Pass slots as a host list (or CPU tensor) to avoid a device sync.
        """
        plan = self._plan(slots)
        out = self.model.step(
            self._prev.index_select(0, plan.idx), self._cond[plan.idx, plan.pos],
            self._cond_out[plan.idx, plan.pos], plan.pos, self.cache, plan,
        )  # [B, K*D]
        self._prev[plan.idx] = out
        self.cache.advance(plan)
        cfg = self.model.cfg
        return out.view(len(plan.slots), cfg.frames_per_step, cfg.latent_dim)

    @torch.inference_mode()
    def release(self, slot: int) -> None:
        """Free ``slot`` for reuse (finished or cancelled); clears its cache entries."""
        self.cache.slot_list([slot])
        self._reset(slot)

    def position(self, slot: int) -> int:
        """Steps already decoded for ``slot``."""
        return self.cache.pos_host[slot]

    def num_steps(self, slot: int) -> int:
        """Total steps S of the sentence in ``slot`` (0 if free)."""
        return self._n_steps[slot]

    def num_frames(self, slot: int) -> int:
        """Total frames F of the sentence in ``slot`` (0 if free)."""
        return self._n_frames[slot]

    def _reset(self, slot: int) -> None:
        self.cache.reset(slot)
        self._cond[slot].zero_()
        self._cond_out[slot].zero_()
        self._prev[slot].zero_()
        self._n_steps[slot] = 0
        self._n_frames[slot] = 0

    def _plan(self, slots: SlotsLike) -> CacheStepPlan:
        """Validate slots and plan the step's cache addressing."""
        sl = self.cache.slot_list(slots)
        self.cache.check_room(sl)
        idle = [s for s in sl if self._n_steps[s] == 0]
        done = [s for s in sl if 0 < self._n_steps[s] <= self.cache.pos_host[s]]
        if idle:
            raise ValueError(f"slots not prefilled (free or released): {idle}")
        if done:
            raise ValueError(f"slots already decoded their last step: {done}")
        return self.cache.plan(sl)


@torch.inference_mode()
def decode_offline(model: ArAcousticModel, conds: list[Tensor]) -> list[Tensor]:
    """Whole-sentence AR decoding of several sentences at once on private slots:
    conds [C, F_i] -> latents [D, F_i]. Stops each at its known step count (no runaway)."""
    slots = ArSlots(model, len(conds))
    n_steps = [slots.prefill(s, c) for s, c in enumerate(conds)]
    outs: list[list[Tensor]] = [[] for _ in conds]
    for t in range(max(n_steps)):
        live = [s for s, n in enumerate(n_steps) if t < n]
        frames = slots.decode_step(live)  # [B, K, D]
        for b, s in enumerate(live):
            outs[s].append(frames[b])
    return [stack_frames(o, c.shape[1]) for o, c in zip(outs, conds)]
