"""Counters the engine thread updates and others read (benchmarks, logs, later /metrics).

Plain ints and a bounded list: single writer (the engine thread), torn reads are harmless.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .requests import SentenceStatus

if TYPE_CHECKING:
    from .scheduler import StepPlan


class EngineObserver:
    """Hook for live metrics; the engine thread calls it. The base class does nothing."""

    def step(self, seconds: float) -> None: ...

    def decode(self, batch: int) -> None: ...

    def vocode(self, batch: int) -> None: ...

    def audio(self, seconds: float) -> None: ...

    def finished(self, outcome: str) -> None: ...


@dataclass
class EngineStats:
    steps: int = 0
    step_seconds: float = 0.0
    decode_steps: int = 0
    decode_rows: int = 0  # sum of batch sizes over decode steps
    vocoder_calls: int = 0
    vocoder_rows: int = 0
    prefills: int = 0
    audio_seconds: float = 0.0  # audio delivered, at the voices' native rates
    peak_live: int = 0  # most sentences holding engine slots at once
    finished: Counter = field(default_factory=Counter)
    observer: EngineObserver = field(default_factory=EngineObserver)

    def record_live(self, live: int) -> None:
        self.peak_live = max(self.peak_live, live)

    def record_step(self, seconds: float, plan: "StepPlan") -> None:
        self.steps += 1
        self.step_seconds += seconds
        self.prefills += len(plan.admit)
        self.observer.step(seconds)

    def record_decode(self, batch: int) -> None:
        self.decode_steps += 1
        self.decode_rows += batch
        self.observer.decode(batch)

    def record_vocode(self, batch: int) -> None:
        self.vocoder_calls += 1
        self.vocoder_rows += batch
        self.observer.vocode(batch)

    def record_audio(self, seconds: float) -> None:
        self.audio_seconds += seconds
        self.observer.audio(seconds)

    def record_finish(self, status: SentenceStatus) -> None:
        self.finished[status.name.lower()] += 1
        self.observer.finished(status.name.lower())

    def snapshot(self) -> dict[str, float]:
        """Totals to diff between two moments (benchmarks)."""
        return {
            "step_seconds": self.step_seconds,
            "audio_seconds": self.audio_seconds,
            "decode_steps": self.decode_steps,
            "decode_rows": self.decode_rows,
            "vocoder_calls": self.vocoder_calls,
            "vocoder_rows": self.vocoder_rows,
        }
