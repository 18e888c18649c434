"""The engine's cost model, measured at start-up (admission's capacity from the first second).

After the warm-up, the default voice speaks one calibration sentence alone, then several copies of
it at once, at a few batch sizes up to the voice's slots. Each round's wall time over the audio it
made is the engine's real-time factor at that concurrency, with its prepare thread and event loop
as they will run; the cost model (admission_policy.CostModel, RTF = fixed / n + per_stream) is
fitted to those points. Copies of one sentence have the same length, so a round is n sentences in
flight from its start to its end. About a second on a 2-core CPU.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..engine.client import EngineClient, synthesize_once
from ..engine.requests import SynthesisOptions
from .admission_policy import CostModel

log = logging.getLogger(__name__)

CALIBRATION_TEXT = "The engine speaks this sentence alone, then with copies of itself, to learn its capacity."


def batch_sizes(slots: int) -> list[int]:
    """1, a quarter of the slots, and all of them (distinct, ascending)."""
    return sorted({1, max(1, slots // 4), max(1, slots)})


async def measure_rtf(client: EngineClient, voice: str, options: SynthesisOptions, n: int, rate: int) -> float:
    """Wall seconds per second of audio with `n` copies of the sentence submitted at once."""
    start = time.perf_counter()
    audio = await asyncio.gather(*(synthesize_once(client, voice, CALIBRATION_TEXT, options) for _ in range(n)))
    wall = time.perf_counter() - start
    return wall / (sum(len(a) for a in audio) / rate)


async def calibrate(client: EngineClient, voice: str, options: SynthesisOptions, slots: int, rate: int) -> CostModel:
    points = [(n, await measure_rtf(client, voice, options, n, rate)) for n in batch_sizes(slots)]
    model = CostModel.fit(points)
    log.info(
        "capacity calibration (%s): RTF %s -> cost %.4f / n + %.4f engine s per audio s",
        voice, ", ".join(f"{rtf:.3f} at {n}" for n, rtf in points), model.fixed, model.per_stream,
    )
    return model
