"""One engine step's plan (scheduler -> executor) and result (executor -> scheduler). No torch.

Each step: `Scheduler.schedule()` returns a StepPlan, `Executor.execute(plan)` runs it on the model
backends and returns a StepResult, `Scheduler.update(plan, result)` applies it (vLLM v1's shape).
The plan carries everything the executor needs (slots, text, chunk windows), so the executor never
reads the scheduler's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .chunking import ChunkSpan
from .requests import EngineEvent, SynthesisOptions


@dataclass(frozen=True)
class PrefillWork:
    request_id: int
    voice: str
    slot: int
    spoken: str
    options: SynthesisOptions


@dataclass(frozen=True)
class DecodeWork:
    """One batched decode step of one voice: request_ids[i] decodes in slots[i]."""

    voice: str
    request_ids: tuple[int, ...]
    slots: tuple[int, ...]


@dataclass(frozen=True)
class VocodeWork:
    request_id: int
    voice: str
    slot: int
    span: ChunkSpan


@dataclass(frozen=True)
class Release:
    """A sentence left the engine (finished, cancelled, failed): free its slot and frames."""

    request_id: int
    voice: str
    slot: int


@dataclass
class StepPlan:
    release: list[Release] = field(default_factory=list)  # done first: the slots may be reused below
    prefill: list[PrefillWork] = field(default_factory=list)
    # Includes sentences admitted in this same step: an AR model's prefill is followed by its first
    # decode step at once (the executor skips rows whose prefill already finished or failed).
    decode: list[DecodeWork] = field(default_factory=list)
    vocode: list[VocodeWork] = field(default_factory=list)
    # a session already playing is about to run dry (SchedulerConfig.urgent_slack_seconds): the
    # engine thread keeps to decode steps and chunks (it prepares a queued sentence itself only
    # when it has nothing else)
    short_of_audio: bool = False

    def has_model_work(self) -> bool:
        return bool(self.prefill or self.decode or self.vocode)


@dataclass(frozen=True)
class Progress:
    """Frames a sentence has after this step; `total` is its length once known (at prefill for
    models that know it, when the model stops otherwise); `finished`: no more frames will come."""

    request_id: int
    frames_ready: int
    total: int | None
    finished: bool


@dataclass(frozen=True)
class Vocoded:
    request_id: int
    span: ChunkSpan
    seconds: float  # audio emitted (feeds the session's playback clock)


@dataclass(frozen=True)
class Failed:
    request_id: int
    code: str
    message: str


@dataclass
class StepResult:
    progress: list[Progress] = field(default_factory=list)  # prefills, then decode rows
    vocoded: list[Vocoded] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    events: list[EngineEvent] = field(default_factory=list)  # for the clients, in order
    decode_batches: list[int] = field(default_factory=list)  # rows per decode call
    vocode_batches: list[int] = field(default_factory=list)  # windows per vocoder call
    prepare_seconds: float = 0.0  # prefills loaded this step: their time on the prepare thread

    def is_empty(self) -> bool:
        """Nothing happened (every sentence in flight is waiting for the prepare thread)."""
        return not (self.progress or self.vocoded or self.failed or self.events)
