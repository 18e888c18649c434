"""The engine's policy: what runs next (prefill, decode step, vocoder chunk). Plain Python, no torch.

The scheduler owns every sentence's state (one SequenceState each) and the slots. Each step:
`schedule()` returns a StepPlan, the executor runs it, `update(plan, result)` applies the result
(see step.py). Nothing else changes a SequenceState except `add` and `cancel`, which the engine
calls between steps.

Sessions receive their sentences strictly in order, so what matters for each session is its
*head*: the earliest of its sentences still in flight. Priorities, so that a new session's first
audio is never stuck behind long sentences and a playing session never runs dry:
- admission: heads first (a session's first sentence before other sessions' later ones), then
  arrival order; a session's later sentences are admitted early (prefetched) only while every
  head with audio to make has at least `prefetch_slack_seconds` of audio buffered at its client;
- vocoder: heads' chunks before later sentences' chunks (those only under the same prefetch
  rule); among heads, sessions not playing yet (their first chunk) first, then the session with
  the least buffered audio (slack) first.
A sentence with a shared generator (SynthesisOptions.shared_rng) is admitted only once its session's
earlier sentences on that generator have made all their frames, and is vocoded as one chunk once
its own are made: its draws then come in the order one request at a time would make them.
A session's client-side buffer is estimated from a playback clock that starts at its first
emitted chunk and runs in real time; it restarts when the session has nothing in flight.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from .chunking import ChunkConfig, ChunkSpan, next_chunk
from .requests import CancelRequest, Reassign, SentenceRequest, SentenceStatus
from .step import DecodeWork, PrefillWork, Release, StepPlan, StepResult, VocodeWork


@dataclass(frozen=True)
class SchedulerConfig:
    max_prefills_per_step: int = 2  # sentences prefilling at once (admitted, not yet decoding)
    vocoder_frames_per_step: int = 192  # budget of window frames decoded per iteration
    prefetch_slack_seconds: float = 1.0
    urgent_slack_seconds: float = 0.1  # a playing session with less buffered is short of audio


@dataclass(frozen=True)
class VoiceSpec:
    """What the scheduler knows of a voice: its slots and its chunk framing."""

    slots: int
    chunks: ChunkConfig


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
class SequenceState:
    """Everything the engine knows of one sentence, in one place."""

    request: SentenceRequest
    arrival: int
    status: SentenceStatus = SentenceStatus.WAITING
    slot: int = -1  # -1: none held
    frames_ready: int = 0
    total: int | None = None  # frames in all; None until known (at prefill, or at the model's stop)
    next_chunk: int = 0  # chunk cursor: the next chunk's index...
    chunk_start: int = 0  # ...and its first frame

    @property
    def request_id(self) -> int:
        return self.request.request_id

    @property
    def voice(self) -> str:
        return self.request.voice

    @property
    def session_id(self) -> str:
        return self.request.session_id


class Scheduler:
    def __init__(self, config: SchedulerConfig, voices: dict[str, VoiceSpec]) -> None:
        self.config = config
        self.voices = voices
        self._free = {name: list(range(v.slots - 1, -1, -1)) for name, v in voices.items()}
        self.sequences: dict[int, SequenceState] = {}
        self.sessions: dict[str, SessionClock] = {}
        self._released: list[Release] = []
        self._arrivals = itertools.count()
        self.paused: set[str] = set()  # voices admitting nothing new (their model is being changed)

    # --- between steps ---------------------------------------------------------------------
    def add(self, request: SentenceRequest) -> SequenceState:
        if request.voice not in self.voices:
            raise KeyError(f"unknown voice {request.voice!r}")
        seq = SequenceState(request, next(self._arrivals))
        self.sequences[request.request_id] = seq
        self.sessions.setdefault(request.session_id, SessionClock()).live.add(request.request_id)
        return seq

    def cancel(self, cancel: CancelRequest) -> list[SequenceState]:
        hits = [s for s in self.sequences.values() if cancel.matches(s.request)]
        for seq in hits:
            self._retire(seq, SentenceStatus.CANCELLED)
        return hits

    def reassign(self, reassign: Reassign) -> None:
        """The sentence now speaks for another session (its text, voice and options stay)."""
        seq = self.sequences.get(reassign.request_id)
        if seq is None:
            return
        self._leave_clock(seq)
        seq.request = seq.request.speaking_for(reassign.owner)
        self.sessions.setdefault(seq.session_id, SessionClock()).live.add(seq.request_id)

    def fail_in_flight(self) -> list[SequenceState]:
        """After an unexpected step error: every sentence holding a slot fails (waiting ones stay)."""
        hits = [s for s in self.sequences.values() if s.status != SentenceStatus.WAITING]
        for seq in hits:
            self._retire(seq, SentenceStatus.FAILED)
        return hits

    # --- one step ------------------------------------------------------------------------------
    def schedule(self, now: float = 0.0) -> StepPlan:
        plan = StepPlan(release=self._released)
        self._released = []
        plan.prefill = [self._prefill_work(s) for s in self._admit(now)]
        rows: dict[str, list[SequenceState]] = {}
        for seq in self.sequences.values():
            if seq.status in (SentenceStatus.PREFILLING, SentenceStatus.DECODING):
                rows.setdefault(seq.voice, []).append(seq)
        plan.decode = [
            DecodeWork(voice, tuple(s.request_id for s in seqs), tuple(s.slot for s in seqs))
            for voice, seqs in rows.items()
        ]
        plan.vocode = self._pick_chunks(now)
        plan.short_of_audio = self._playing_short(now)
        return plan

    def update(self, plan: StepPlan, result: StepResult, now: float = 0.0) -> list[SequenceState]:
        """Apply a step's result; returns the sentences that left the engine (finished, failed)."""
        retired: list[SequenceState] = []
        for p in result.progress:
            seq = self.sequences[p.request_id]
            seq.frames_ready = p.frames_ready
            if p.finished:
                seq.total = p.frames_ready
            elif p.total is not None:
                seq.total = p.total
            seq.status = SentenceStatus.VOCODING if p.finished else SentenceStatus.DECODING
        for v in result.vocoded:
            seq = self.sequences[v.request_id]
            seq.next_chunk, seq.chunk_start = v.span.index + 1, v.span.end
            self.sessions[seq.session_id].emitted(v.seconds, now)
            if v.span.last:
                retired.append(self._retire(seq, SentenceStatus.FINISHED))
        for f in result.failed:
            if (failed := self.sequences.get(f.request_id)) is not None:
                retired.append(self._retire(failed, SentenceStatus.FAILED))
        return retired

    # --- reading -------------------------------------------------------------------------------
    def has_work(self) -> bool:
        return bool(self.sequences) or bool(self._released)

    def num_waiting(self) -> int:
        return sum(s.status == SentenceStatus.WAITING for s in self.sequences.values())

    def active_slots(self) -> dict[str, int]:
        return {name: v.slots - len(self._free[name]) for name, v in self.voices.items()}

    def is_idle(self, voice: str) -> bool:
        """No slot of the voice is held or still to be released by the executor."""
        held = self.voices[voice].slots - len(self._free[voice])
        return held == 0 and not any(r.voice == voice for r in self._released)

    def is_head(self, seq: SequenceState) -> bool:
        """The earliest sentence of its session still in flight: the one being sent."""
        live = self.sessions[seq.session_id].live
        ordinal = seq.request.session_ordinal
        return all(self.sequences[r].request.session_ordinal >= ordinal for r in live)

    # --- internals -----------------------------------------------------------------------------
    def _retire(self, seq: SequenceState, status: SentenceStatus) -> SequenceState:
        seq.status = status
        del self.sequences[seq.request_id]
        self._leave_clock(seq)
        if seq.slot >= 0:
            self._free[seq.voice].append(seq.slot)
            self._released.append(Release(seq.request_id, seq.voice, seq.slot))
        return seq

    def _leave_clock(self, seq: SequenceState) -> None:
        clock = self.sessions[seq.session_id]
        clock.live.discard(seq.request_id)
        if not clock.live:  # idle: the next reply starts a new playback clock
            del self.sessions[seq.session_id]

    def _prefill_work(self, seq: SequenceState) -> PrefillWork:
        r = seq.request
        return PrefillWork(r.request_id, r.voice, seq.slot, r.spoken, r.options)

    def _urgent_heads(self, now: float) -> bool:
        """Some head still has audio to make while its client holds little buffered audio."""
        limit = self.config.prefetch_slack_seconds
        return any(
            self.is_head(s) and self.sessions[s.session_id].slack(now) < limit
            for s in self.sequences.values()
        )

    def _playing_short(self, now: float) -> bool:
        """Some session that is playing will run dry soon (less than urgent_slack_seconds buffered):
        the engine thread must not spend a prefill's time (~30 ms on a CPU) away from its chunks."""
        limit = self.config.urgent_slack_seconds
        return any(c.started_at is not None and c.slack(now) < limit for c in self.sessions.values())

    def _admit_priority(self, seq: SequenceState, now: float) -> tuple[bool, bool, float, int]:
        slack = self.sessions[seq.session_id].slack(now)
        return (not self.is_head(seq), seq.request.session_ordinal > 0, slack, seq.arrival)

    def _admit(self, now: float) -> list[SequenceState]:
        waiting = [s for s in self.sequences.values() if s.status == SentenceStatus.WAITING]
        waiting.sort(key=lambda s: self._admit_priority(s, now))
        prefetch_ok = not self._urgent_heads(now)
        # prefills in flight at once: a prefill handed to the prepare thread stays PREFILLING over
        # several steps, and a sentence admitted later with more urgency must not queue behind many
        room = self.config.max_prefills_per_step - sum(
            s.status == SentenceStatus.PREFILLING for s in self.sequences.values()
        )
        admitted: list[SequenceState] = []
        for seq in waiting:
            if len(admitted) >= room:
                break
            if not (self.is_head(seq) or prefetch_ok):
                break  # heads come first in `waiting`: the rest are later sentences too
            if seq.voice in self.paused or self._rng_busy(seq):
                continue
            free = self._free[seq.voice]
            if free:
                seq.slot = free.pop()
                seq.status = SentenceStatus.PREFILLING
                admitted.append(seq)
        return admitted

    def _rng_busy(self, seq: SequenceState) -> bool:
        """An earlier sentence of its session on its shared generator still makes frames."""
        stream = seq.request.options.shared_rng
        if stream is None:
            return False
        ordinal = seq.request.session_ordinal
        return any(
            o.request.options.shared_rng == stream and o.request.session_ordinal < ordinal
            and o.status <= SentenceStatus.DECODING
            for r in self.sessions[seq.session_id].live if (o := self.sequences[r]) is not seq
        )

    def _chunk_priority(self, work: VocodeWork, now: float) -> tuple[bool, bool, float, int]:
        # A session not yet playing (its first chunk) goes first; playing ones by least slack.
        seq = self.sequences[work.request_id]
        clock = self.sessions[seq.session_id]
        return (not self.is_head(seq), clock.started_at is not None, clock.slack(now), seq.arrival)

    def _pick_chunks(self, now: float) -> list[VocodeWork]:
        ready = [w for s in self.sequences.values() if (w := self._ready_chunk(s)) is not None]
        if self._urgent_heads(now):  # no prefetching while some client is short of audio
            ready = [w for w in ready if self.is_head(self.sequences[w.request_id])]
        ready.sort(key=lambda w: self._chunk_priority(w, now))
        picked: list[VocodeWork] = []
        budget = self.config.vocoder_frames_per_step
        for work in ready:
            if picked and work.span.window_frames > budget:
                break
            picked.append(work)
            budget -= work.span.window_frames
        return picked

    def _ready_chunk(self, seq: SequenceState) -> VocodeWork | None:
        if seq.status < SentenceStatus.DECODING:
            return None
        if seq.total == 0 and seq.next_chunk == 0:  # nothing to say: one empty closing chunk
            span: ChunkSpan | None = ChunkSpan(0, 0, 0, 0, 0, last=True)
        elif seq.request.options.shared_rng is not None:  # whole, once its frames are all made
            span = None if seq.total is None else ChunkSpan(0, 0, seq.total, 0, seq.total, last=True)
        else:
            chunks = self.voices[seq.voice].chunks
            span = next_chunk(chunks, seq.next_chunk, seq.chunk_start, seq.frames_ready, seq.total)
        return None if span is None else VocodeWork(seq.request_id, seq.voice, seq.slot, span)
