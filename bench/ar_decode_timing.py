"""Batched AR decode-step timing: the median ms per step of the AR acoustic model at several batch
sizes, on its own serving state (ArSlots), with random weights of the shipped shapes.

    python bench/ar_decode_timing.py [START_POS]      # also called by bench_stream.py

Every slot decodes positions [start_pos + warmup, start_pos + warmup + n_steps). The slots are
0..bs-1 in reverse order; with the default ``window_ratio`` the cache reads them as one view,
``window_ratio=0`` forces the gather path.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream_server.models.ar_latent.ar_acoustic import ArAcousticModel, ArConfig  # noqa: E402
from stream_server.models.ar_latent.ar_slots import ArSlots  # noqa: E402


def time_decode_steps(
    batch_sizes: Sequence[int] = (1, 8, 32),
    n_steps: int = 64,
    warmup: int = 8,
    start_pos: int = 0,
    window_ratio: float = 2.0,
    cfg: ArConfig = ArConfig(),
    device: str = "cpu",
) -> dict[int, float]:
    """Print and return the median ms per batched decode step at each batch size."""
    torch.manual_seed(0)
    model = ArAcousticModel(cfg).to(device).eval()
    K, result = cfg.frames_per_step, {}
    for bs in batch_sizes:
        state = ArSlots(model, bs, device, window_ratio=window_ratio)
        for s in range(bs):
            state.prefill(s, torch.randn(cfg.cond_dim, K * (start_pos + warmup + n_steps), device=device))
        slots = list(range(bs))[::-1]
        for _ in range(start_pos + warmup):
            state.decode_step(slots)
        ms = sorted(_timed_step(state, slots, device) for _ in range(n_steps))
        result[bs] = ms[len(ms) // 2]
        print(f"batch {bs:3d}: median {result[bs]:7.3f} ms/step (mean {sum(ms) / len(ms):7.3f}; "
              f"{result[bs] / bs:6.3f} ms/seq-step; positions {start_pos + warmup}.."
              f"{start_pos + warmup + n_steps - 1}; {torch.get_num_threads()} threads; window_ratio {window_ratio})")
    return result


def _timed_step(state: ArSlots, slots: list[int], device: str) -> float:
    """Wall time of one decode step in ms."""
    _sync(device)
    t0 = time.perf_counter()
    state.decode_step(slots)
    _sync(device)
    return (time.perf_counter() - t0) * 1e3


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


if __name__ == "__main__":
    n_params = sum(p.numel() for p in ArAcousticModel().parameters())
    print(f"ArAcousticModel(ArConfig()): {n_params:,} parameters")
    start = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    time_decode_steps(start_pos=start)
    time_decode_steps(start_pos=start, window_ratio=0.0)
