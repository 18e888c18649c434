"""The engine's cost curve, measured at start-up (admission's capacity from the first second).

After the warm-up, the default voice speaks one calibration sentence alone, then several copies of
it at once, at a few batch sizes up to the voice's slots. Each round's wall time over the audio it
made is the engine's real-time factor at that concurrency, with its prepare thread and event loop
as they will run; those points are the cost curve admission reads (admission_policy.CostCurve).
Copies of one sentence have the same length, so a round is n sentences in flight from its start to
its end. Each round runs twice, the faster kept. 4 to 7 s on a 2-core CPU.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..engine.client import EngineClient, synthesize_once
from ..engine.requests import SynthesisOptions
from .admission_policy import CostCurve

log = logging.getLogger(__name__)

# A short sentence, as conversations have them (about 2.5 s of audio): per second of audio, short
# sentences cost the most (a prefill and a first chunk's context each), so the model errs on refusing
CALIBRATION_TEXT = "Sorry, the road north is closed until the storm passes."


def batch_sizes(slots: int) -> list[int]:
    """1, a quarter of the slots, and all of them (distinct, ascending)."""
    return sorted({1, max(1, slots // 4), max(1, slots)})


async def measure_rtf(client: EngineClient, voice: str, options: SynthesisOptions, n: int, rate: int) -> float:
    """Wall seconds per second of audio with `n` copies of the sentence submitted at once."""
    start = time.perf_counter()
    audio = await asyncio.gather(*(synthesize_once(client, voice, CALIBRATION_TEXT, options) for _ in range(n)))
    wall = time.perf_counter() - start
    return wall / (sum(len(a) for a in audio) / rate)


async def calibrate(client: EngineClient, voice: str, options: SynthesisOptions, slots: int, rate: int,
                    repeats: int = 2) -> CostCurve:
    """Each batch size `repeats` times, the fastest kept: a round that a start-up's lazy work or
    another process slowed down would otherwise set the capacity for good (three single-round
    calibrations on a shared 2-core machine gave capacities of 21, 21 and 12)."""
    points = []
    for n in batch_sizes(slots):
        rtfs = [await measure_rtf(client, voice, options, n, rate) for _ in range(repeats)]
        points.append((n, min(rtfs)))
    curve = CostCurve(tuple(points))
    log.info("capacity calibration (%s): engine RTF %s", voice, ", ".join(f"{rtf:.3f} at {n}" for n, rtf in points))
    return curve
