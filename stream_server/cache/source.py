"""The cache on the session side: lookup, one synthesis per sentence in flight, replay, store.

All of it runs on the asyncio loop; the engine thread only sees ordinary SentenceRequests (it
never touches Redis), and the engine's events reach a flight on the loop (EngineClient sinks).
For each sentence a session submits:

1. its key is computed; if the same key is already in flight (being looked up or synthesized)
   the session joins that flight: it gets the chunks so far at once and the rest as they come
   (one synthesis for any number of sessions asking at the same moment);
2. otherwise a flight starts with a cache lookup; a hit is replayed at once in the engine's own
   chunk framing (chunk_bounds, whole hop_length frames) with `cached=True`;
3. a miss is synthesized on behalf of one subscriber's session (its owner: the engine's
   scheduler then applies that session's priorities, as without the cache); the chunks fan out
   to every subscriber as they arrive. A subscriber's cancel only drops it; when the owner leaves
   (or a subscriber nearer the head of its session joins), the synthesis is reassigned to another
   subscriber; when none is left, that one request is cancelled. The sentence is stored only after
   its last chunk went out, never if it failed or every subscriber cancelled.

A sentence on a request's shared generator (SynthesisOptions.shared_rng: an api_v2 request with a
fixed seed) goes straight to the engine: its audio depends on that request's earlier sentences, so
its key would never come again.

Ordering is the session's business: its ticket is queued before any lookup starts, and its pump
sends tickets strictly in order whatever order their audio arrives in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..audio.formats import OutputSpec
from ..engine.chunking import ChunkConfig, chunk_bounds
from ..engine.client import EngineClient, Sink
from ..engine.requests import (
    AudioEvent,
    CancelRequest,
    EngineEvent,
    ErrorEvent,
    SentenceRequest,
    TimingEvent,
)
from .codec import CachedSentence, EntryShape
from .keys import KeyBuilder, SentenceKey
from .store import SentenceCache

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class _Subscriber:
    request: SentenceRequest  # its session, context and place in the session
    sink: Sink


@dataclass(eq=False)
class _Flight:
    key: SentenceKey
    request: SentenceRequest  # the first subscriber's: voice and options (the key's), replay id
    subscribers: list[_Subscriber]
    synthesis: SentenceRequest | None = None  # what the engine runs, on behalf of its owner
    events: list[AudioEvent | TimingEvent] = field(default_factory=list)  # so far, for late joiners
    timing: TimingEvent | None = None  # the sentence's word timings, stored with the entry
    lookup: asyncio.Task | None = None
    cancelled: bool = False


def replay_events(
    entry: CachedSentence, chunks: ChunkConfig, request_id: int = 0
) -> Iterator[AudioEvent | TimingEvent]:
    """A cached sentence as the engine would have sent it: its word timings (if stored) first,
    then the same chunk sizes, same `last`."""
    if entry.word_timings:
        frames = [(int(a), int(b)) for a, b in entry.word_timings]
        yield TimingEvent(
            request_id, frames, entry.hop_length / entry.sample_rate, entry.num_frames, cached=True
        )
    bounds = chunk_bounds(entry.num_frames, chunks)
    if not bounds:  # nothing to say: the engine sends one empty closing chunk
        yield AudioEvent(request_id, 0, np.zeros(0, np.float32), last=True, cached=True)
        return
    hop = entry.hop_length
    for i, (start, end) in enumerate(bounds):
        pcm = entry.pcm[start * hop : end * hop]
        yield AudioEvent(request_id, i, pcm, last=i == len(bounds) - 1, cached=True)


class CachedSource:
    """A SentenceSource (see server/sentence_source.py) with the sentence cache in front."""

    def __init__(
        self,
        client: EngineClient,
        cache: SentenceCache,
        keys: KeyBuilder,
        chunks: dict[str, ChunkConfig],  # voice -> the engine's chunk framing for it
        voice_shapes: dict[str, tuple[int, int]],  # voice -> (native rate, hop_length)
    ) -> None:
        self.client = client
        self.cache = cache
        self.keys = keys
        self.chunks = chunks
        self.voice_shapes = voice_shapes
        self.stats = cache.stats
        self._loop = asyncio.get_running_loop()
        self._flights: dict[str, _Flight] = {}  # digest -> the flight other sessions can join
        self._active: set[_Flight] = set()
        self._tasks: set[asyncio.Task] = set()
        self._direct: dict[int, SentenceRequest] = {}  # uncached sentences in flight, by request id

    # --- SentenceSource -----------------------------------------------------------------------
    def submit(self, request: SentenceRequest, output: OutputSpec, sink: Sink) -> None:
        if request.options.shared_rng is not None:  # its audio depends on its request's earlier sentences
            self._submit_direct(request, sink)
            return
        key = self.keys.key(request, output)
        sub = _Subscriber(request, sink)
        flight = self._flights.get(key.digest)
        if flight is not None and flight.key == key:
            self._join(flight, sub)
            return
        flight = _Flight(key, request, [sub])
        # A different key with the same digest (a collision) runs on its own, unshared.
        self._flights.setdefault(key.digest, flight)
        self._active.add(flight)
        flight.lookup = self._spawn(self._look_up(flight))

    def cancel(self, cancel: CancelRequest) -> None:
        for request in [r for r in self._direct.values() if cancel.matches(r)]:
            self.client.cancel(CancelRequest(request_id=request.request_id))
        for flight in list(self._active):
            kept = [s for s in flight.subscribers if not cancel.matches(s.request)]
            if len(kept) == len(flight.subscribers):
                continue
            flight.subscribers = kept
            if not kept:
                self._abandon(flight)
            elif flight.synthesis is not None and cancel.matches(flight.synthesis):
                self._hand_over(flight, kept[0].request)  # its owner left: the synthesis goes on

    def _submit_direct(self, request: SentenceRequest, sink: Sink) -> None:
        """Synthesized, never cached nor shared (its key would never come again)."""
        self._direct[request.request_id] = request

        def forward(event: EngineEvent) -> None:
            if event.last:
                self._direct.pop(request.request_id, None)
            sink(event)

        self.client.submit(request, forward)

    # --- flights ------------------------------------------------------------------------------
    def _join(self, flight: _Flight, sub: _Subscriber) -> None:
        self.stats.count("joined")
        for event in flight.events:
            sub.sink(event)
        flight.subscribers.append(sub)
        owner = flight.synthesis
        if owner is not None and sub.request.session_ordinal < owner.session_ordinal:
            self._hand_over(flight, sub.request)  # nearer the head of its session: more urgent

    def _hand_over(self, flight: _Flight, owner: SentenceRequest) -> None:
        assert flight.synthesis is not None
        flight.synthesis = flight.synthesis.speaking_for(owner)
        self.client.reassign(flight.synthesis.request_id, owner)

    async def _look_up(self, flight: _Flight) -> None:
        try:
            entry = await self.cache.get(flight.key, self._shape(flight.request.voice))
        except Exception:  # a cache bug must not cost the client its sentence
            log.exception("sentence cache lookup failed; synthesizing")
            entry = None
        if flight.cancelled:
            return
        events = self._replay(flight, entry) if entry is not None else None
        if events is None:
            self._synthesize(flight)
            return
        self._retire(flight)
        for event in events:
            self._fan_out(flight, event)

    def _replay(self, flight: _Flight, entry: CachedSentence) -> list | None:
        """The whole replay, made before any of it goes out: a replay that fails half-way would
        leave its sessions waiting for a last chunk that never comes (None: synthesize instead)."""
        try:
            chunks = self.chunks[flight.request.voice]
            return list(replay_events(entry, chunks, flight.request.request_id))
        except Exception:  # the entry was validated: this is a bug, and the client still gets audio
            log.exception("sentence cache: replaying %r failed; synthesizing", flight.key.spoken[:80])
            return None

    def _shape(self, voice: str) -> EntryShape:
        return EntryShape(*self.voice_shapes[voice])

    def _synthesize(self, flight: _Flight) -> None:
        """Synthesized as the first subscriber's sentence (its spoken form is the key's)."""
        self.stats.count("synthesized")
        flight.synthesis = flight.subscribers[0].request
        self.client.submit(flight.synthesis, lambda event: self._on_engine_event(flight, event))

    def _on_engine_event(self, flight: _Flight, event: EngineEvent) -> None:
        if flight.cancelled:
            return
        if isinstance(event, ErrorEvent):
            self.stats.count("synthesis_failed")
            self._retire(flight)  # never stored; the next request tries again
            self._fan_out(flight, event)
            return
        flight.events.append(event)
        self._fan_out(flight, event)
        if isinstance(event, TimingEvent):
            flight.timing = event
            return
        if event.last:
            self._retire(flight)
            self._spawn(self._store(flight))  # after the last chunk went to every subscriber

    async def _store(self, flight: _Flight) -> None:
        rate, hop = self.voice_shapes[flight.request.voice]
        audio = [e.pcm for e in flight.events if isinstance(e, AudioEvent)]
        pcm = np.concatenate(audio).astype(np.float32, copy=False)
        if len(pcm) % hop:
            log.warning("sentence cache: %d samples is not whole frames; not stored", len(pcm))
            return
        timings = [] if flight.timing is None else [tuple(f) for f in flight.timing.word_frames]
        entry = CachedSentence(flight.key.spoken, flight.key.material, rate, hop, pcm, timings)
        await self.cache.put(flight.key, entry, self._shape(flight.request.voice))

    def _fan_out(self, flight: _Flight, event: EngineEvent) -> None:
        for sub in flight.subscribers:
            sub.sink(event)

    def _abandon(self, flight: _Flight) -> None:
        """Nobody listens any more: stop the work, store nothing."""
        flight.cancelled = True
        self._retire(flight)
        if flight.synthesis is not None:
            self.client.cancel(CancelRequest(request_id=flight.synthesis.request_id))
        elif flight.lookup is not None:
            flight.lookup.cancel()

    def _retire(self, flight: _Flight) -> None:
        """No one can join this flight any more (its audio is complete, failed or abandoned)."""
        if self._flights.get(flight.key.digest) is flight:
            del self._flights[flight.key.digest]
        self._active.discard(flight)

    def _spawn(self, coro) -> asyncio.Task:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sentence cache task failed", exc_info=task.exception())

    def in_flight(self) -> int:
        return len(self._active)

    async def drain(self) -> None:
        """Wait for pending lookups and writes (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.drain()
