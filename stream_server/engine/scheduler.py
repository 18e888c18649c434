"""The engine's policy: what runs next (prefill, decode step, vocoder chunk). Plain Python, no torch.

The executor owns tensors and calls the model; this module only keeps counts. Each iteration:
`schedule()` returns a StepPlan, the executor runs it and reports back through `on_prefilled`,
`on_frames`, `on_chunk_done` and `finish` (the same split as vLLM v1's schedule/update_from_output).

Sessions receive their sentences strictly in order, so what matters for each session is its
*head*: the earliest of its sentences still in flight. Priorities, so that a new session's first
audio is never stuck behind long sentences and a playing session never runs dry:
- admission: heads first (a session's first sentence before other sessions' later ones), then
  arrival order; a session's later sentences are admitted early (prefetched) only while every
  head with audio to make has at least `prefetch_slack_seconds` of audio buffered at its client;
- vocoder: heads' chunks before later sentences' chunks (those only under the same prefetch
  rule); among heads, sessions not playing yet (their first chunk) first, then the session with
  the least buffered audio (slack) first.
A session's client-side buffer is estimated from a playback clock that starts at its first
emitted chunk and runs in real time; it restarts when the session has nothing in flight.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from .requests import SentenceStatus


@dataclass(frozen=True)
class ChunkConfig:
    first_chunk_frames: int = 18  # ~0.2 s at 86 frames/s: small, for fast first audio
    chunk_frames: int = 64  # later chunks are larger: fewer vocoder calls
    left_context: int = 16  # frames of context either side so chunk joins are exact
    right_context: int = 16


@dataclass(frozen=True)
class SchedulerConfig:
    max_prefills_per_step: int = 1
    vocoder_frames_per_step: int = 192  # budget of window frames decoded per iteration
    chunks: ChunkConfig = ChunkConfig()
    prefetch_slack_seconds: float = 1.0


def chunk_bounds(num_frames: int, cfg: ChunkConfig) -> list[tuple[int, int]]:
    """Split [0, num_frames) into a small first chunk, a second twice as long, then chunks of
    chunk_frames: the second chunk is due when the first has played, so it must come quickly."""
    bounds, start, size = [], 0, cfg.first_chunk_frames
    while start < num_frames:
        end = min(num_frames, start + size)
        # Fold a tiny remainder into this chunk rather than a separate call.
        if num_frames - end < cfg.first_chunk_frames // 2:
            end = num_frames
        bounds.append((start, end))
        start = end
        size = min(2 * size, cfg.chunk_frames) if len(bounds) == 1 else cfg.chunk_frames
    return bounds


@dataclass(frozen=True)
class ChunkTask:
    request_id: int
    voice: str
    chunk_index: int
    start: int  # frames of the sentence this chunk emits: [start, end)
    end: int
    window_start: int  # frames decoded, context included: [window_start, window_end)
    window_end: int
    last: bool

    @property
    def window_frames(self) -> int:
        return self.window_end - self.window_start


@dataclass
class SessionClock:
    """Estimate of how much audio a session's client has buffered (seconds)."""

    live: set[int] = field(default_factory=set)  # its sentences in flight
    started_at: float | None = None  # when its first chunk was emitted
    emitted_seconds: float = 0.0

    def slack(self, now: float) -> float:
        if self.started_at is None:
            return 0.0  # nothing playing: its first audio is due now
        return self.started_at + self.emitted_seconds - now

    def emitted(self, seconds: float, now: float) -> None:
        if self.started_at is None:
            self.started_at = now
        self.emitted_seconds += seconds


@dataclass
class SequenceView:
    """The scheduler's bookkeeping for one sentence."""

    request_id: int
    voice: str
    session_id: str
    session_ordinal: int
    arrival: int
    status: SentenceStatus = SentenceStatus.WAITING
    num_frames: int = 0  # known after prefill
    frames_ready: int = 0
    chunks: list[tuple[int, int]] = field(default_factory=list)
    next_chunk: int = 0


@dataclass
class StepPlan:
    admit: list[int] = field(default_factory=list)
    decode: dict[str, list[int]] = field(default_factory=dict)  # voice -> request ids
    vocode: list[ChunkTask] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.admit or self.decode or self.vocode)


class Scheduler:
    def __init__(self, config: SchedulerConfig, slots_per_voice: dict[str, int]) -> None:
        self.config = config
        self.free_slots = dict(slots_per_voice)
        self.sequences: dict[int, SequenceView] = {}
        self.sessions: dict[str, SessionClock] = {}
        self._arrivals = itertools.count()

    # --- bookkeeping -------------------------------------------------------------------
    def add(self, request_id: int, voice: str, session_id: str, session_ordinal: int) -> None:
        if voice not in self.free_slots:
            raise KeyError(f"unknown voice {voice!r}")
        self.sequences[request_id] = SequenceView(
            request_id, voice, session_id, session_ordinal, next(self._arrivals)
        )
        self.sessions.setdefault(session_id, SessionClock()).live.add(request_id)

    def on_prefilled(self, request_id: int, num_frames: int, frames_ready: int) -> None:
        seq = self.sequences[request_id]
        seq.num_frames = num_frames
        seq.chunks = chunk_bounds(num_frames, self.config.chunks)
        self.on_frames(request_id, frames_ready)

    def on_frames(self, request_id: int, frames_ready: int) -> None:
        seq = self.sequences[request_id]
        seq.frames_ready = min(frames_ready, seq.num_frames)
        if seq.frames_ready >= seq.num_frames:
            seq.status = SentenceStatus.VOCODING
        else:
            seq.status = SentenceStatus.DECODING

    def on_chunk_done(self, request_id: int, seconds: float = 0.0, now: float = 0.0) -> bool:
        """A chunk of `seconds` of audio was emitted at `now`. True if it was the last one."""
        seq = self.sequences[request_id]
        seq.next_chunk += 1
        self.sessions[seq.session_id].emitted(seconds, now)
        return seq.next_chunk >= len(seq.chunks)

    def finish(self, request_id: int, status: SentenceStatus) -> bool:
        """Drop a sentence (finished, cancelled or failed). Returns True if it held a slot."""
        assert status.is_done()
        seq = self.sequences.pop(request_id, None)
        if seq is None:
            return False
        clock = self.sessions[seq.session_id]
        clock.live.discard(request_id)
        if not clock.live:  # idle: the next reply starts a new playback clock
            del self.sessions[seq.session_id]
        held = seq.status != SentenceStatus.WAITING
        if held:
            self.free_slots[seq.voice] += 1
        return held

    def has_work(self) -> bool:
        return bool(self.sequences)

    def num_waiting(self) -> int:
        return sum(s.status == SentenceStatus.WAITING for s in self.sequences.values())

    # --- policy ------------------------------------------------------------------------
    def is_head(self, seq: SequenceView) -> bool:
        """The earliest sentence of its session still in flight: the one being sent."""
        live = self.sessions[seq.session_id].live
        return all(self.sequences[r].session_ordinal >= seq.session_ordinal for r in live)

    def schedule(self, now: float = 0.0) -> StepPlan:
        """Admit, then list decodes (the just-admitted too: an AR model's prefill is followed
        by its first step in the same iteration; the executor skips any that prefill completed)."""
        plan = StepPlan(admit=self._admit(now))
        for seq in self.sequences.values():
            if seq.status in (SentenceStatus.PREFILLING, SentenceStatus.DECODING):
                plan.decode.setdefault(seq.voice, []).append(seq.request_id)
        plan.vocode = self._pick_chunks(now)
        return plan

    def status(self, request_id: int) -> SentenceStatus | None:
        seq = self.sequences.get(request_id)
        return None if seq is None else seq.status

    def _urgent_heads(self, now: float) -> bool:
        """Some head still has audio to make while its client holds little buffered audio."""
        limit = self.config.prefetch_slack_seconds
        return any(
            self.is_head(s) and self.sessions[s.session_id].slack(now) < limit
            for s in self.sequences.values()
        )

    def _admit_priority(self, seq: SequenceView, now: float) -> tuple:
        slack = self.sessions[seq.session_id].slack(now)
        return (not self.is_head(seq), seq.session_ordinal > 0, slack, seq.arrival)

    def _admit(self, now: float) -> list[int]:
        waiting = [s for s in self.sequences.values() if s.status == SentenceStatus.WAITING]
        waiting.sort(key=lambda s: self._admit_priority(s, now))
        prefetch_ok = not self._urgent_heads(now)
        admitted: list[int] = []
        for seq in waiting:
            if len(admitted) >= self.config.max_prefills_per_step:
                break
            if not (self.is_head(seq) or prefetch_ok):
                break  # heads come first in `waiting`: the rest are later sentences too
            if self.free_slots[seq.voice] > 0:
                self.free_slots[seq.voice] -= 1
                seq.status = SentenceStatus.PREFILLING
                admitted.append(seq.request_id)
        return admitted

    def _chunk_priority(self, task: ChunkTask, now: float) -> tuple:
        # A session not yet playing (its first chunk) goes first; playing ones by least slack.
        seq = self.sequences[task.request_id]
        clock = self.sessions[seq.session_id]
        return (not self.is_head(seq), clock.started_at is not None, clock.slack(now), seq.arrival)

    def _pick_chunks(self, now: float) -> list[ChunkTask]:
        ready = [t for s in self.sequences.values() if (t := self._ready_chunk(s)) is not None]
        if self._urgent_heads(now):  # no prefetching while some client is short of audio
            ready = [t for t in ready if self.is_head(self.sequences[t.request_id])]
        ready.sort(key=lambda t: self._chunk_priority(t, now))
        picked, budget = [], self.config.vocoder_frames_per_step
        for task in ready:
            if picked and task.window_frames > budget:
                break
            picked.append(task)
            budget -= task.window_frames
        return picked

    def _ready_chunk(self, seq: SequenceView) -> ChunkTask | None:
        if seq.status < SentenceStatus.DECODING or seq.next_chunk >= len(seq.chunks):
            return None
        cfg = self.config.chunks
        start, end = seq.chunks[seq.next_chunk]
        window_end = min(seq.num_frames, end + cfg.right_context)
        if seq.frames_ready < window_end:
            return None  # right context not generated yet
        return ChunkTask(
            request_id=seq.request_id,
            voice=seq.voice,
            chunk_index=seq.next_chunk,
            start=start,
            end=end,
            window_start=max(0, start - cfg.left_context),
            window_end=window_end,
            last=seq.next_chunk == len(seq.chunks) - 1,
        )
