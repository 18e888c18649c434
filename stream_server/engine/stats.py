"""Counters and gauges the engine thread updates and others read (benchmarks, tests, /metrics).

Single writer (the engine thread); plain ints and floats, so torn reads from another thread are
harmless. The observer receives the same facts as they happen (the server's Prometheus metrics).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .requests import SentenceStatus

if TYPE_CHECKING:
    from .step import StepResult


class EngineObserver:
    """Hook for live metrics; the engine thread calls it. The base class does nothing."""

    def step(self, seconds: float) -> None: ...

    def decode(self, batch: int) -> None: ...

    def vocode(self, batch: int) -> None: ...

    def audio(self, seconds: float) -> None: ...

    def finished(self, outcome: str) -> None: ...

    def occupancy(self, waiting: int, active_slots: dict[str, int]) -> None: ...


@dataclass(frozen=True)
class RecentRtf:
    """Engine compute seconds and audio seconds over roughly the last `window` seconds of audio
    produced (both decayed by exp(-audio / window) as audio comes: idle time changes nothing, so it
    stays the RTF of the latest load). Beside them, likewise decayed: the prepare thread's seconds
    (it runs beside the engine thread, so the busier of the two bounds the engine) and the
    sentences in flight times step seconds (their mean is the concurrency the RTF was measured
    at). Immutable: the engine thread swaps in a new one each step, so a reader on another thread
    always sees a consistent set."""

    compute_seconds: float = 0.0
    audio_seconds: float = 0.0
    prepare_seconds: float = 0.0
    live_seconds: float = 0.0

    @property
    def rtf(self) -> float | None:
        busy = max(self.compute_seconds, self.prepare_seconds)
        return busy / self.audio_seconds if self.audio_seconds > 0 else None

    @property
    def concurrency(self) -> float | None:
        """Mean sentences in flight while measured (weighted by step time)."""
        return self.live_seconds / self.compute_seconds if self.compute_seconds > 0 else None

    def add(self, compute: float, audio: float, window: float, prepare: float = 0.0, live: int = 0) -> RecentRtf:
        keep = math.exp(-audio / window)
        return RecentRtf(
            self.compute_seconds * keep + compute, self.audio_seconds * keep + audio,
            self.prepare_seconds * keep + prepare, self.live_seconds * keep + live * compute,
        )


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
    waiting: int = 0  # sentences queued for a slot, after the last step
    active_slots: dict[str, int] = field(default_factory=dict)  # per voice, after the last step
    finished: Counter[str] = field(default_factory=Counter)
    observer: EngineObserver = field(default_factory=EngineObserver)
    recent: RecentRtf = field(default_factory=RecentRtf)  # admission's measure of capacity
    recent_window_audio_seconds: float = 30.0

    def record_step(self, seconds: float, prefills: int, result: StepResult, live: int = 0) -> None:
        """One step of `seconds` on the engine thread, with `live` sentences in flight."""
        self.steps += 1
        self.step_seconds += seconds
        self.prefills += prefills
        self.observer.step(seconds)
        for batch in result.decode_batches:
            self.decode_steps += 1
            self.decode_rows += batch
            self.observer.decode(batch)
        for batch in result.vocode_batches:
            self.vocoder_calls += 1
            self.vocoder_rows += batch
            self.observer.vocode(batch)
        audio = sum(v.seconds for v in result.vocoded)
        self.recent = self.recent.add(seconds, audio, self.recent_window_audio_seconds, result.prepare_seconds, live)
        if audio:
            self.audio_seconds += audio
            self.observer.audio(audio)

    def record_occupancy(self, waiting: int, active_slots: dict[str, int]) -> None:
        self.waiting = waiting
        self.active_slots = active_slots
        self.peak_live = max(self.peak_live, sum(active_slots.values()))
        self.observer.occupancy(waiting, active_slots)

    def record_finish(self, status: SentenceStatus) -> None:
        self.finished[status.name.lower()] += 1
        self.observer.finished(status.name.lower())

    def forget_recent(self) -> None:
        """Start the recent RTF afresh (after the warm-up, whose one-time costs are not load)."""
        self.recent = RecentRtf()

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
