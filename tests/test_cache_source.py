"""The cache-aware sentence source with the real engine thread (a tiny fast voice) and a real
redis-server: miss -> synthesize -> store after the last chunk; hit -> replay in the engine's
framing; one synthesis for sentences asked at the same moment; cancel, failure, Redis down;
and a session's sentences stay in order when a later one is a hit."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import redis.asyncio as aioredis
import torch

from stream_server.cache.embedded_redis import EmbeddedRedis, find_redis_server
from stream_server.cache.keys import KeyBuilder, OutputSpec
from stream_server.cache.source import CachedSource
from stream_server.cache.spoken_form import spoken_form, spoken_seed
from stream_server.cache.store import SentenceCache, make_client
from stream_server.engine.backend import PrefillOutput
from stream_server.engine.executor import Engine, EngineConfig
from stream_server.engine.requests import (
    AudioEvent,
    CancelRequest,
    ErrorEvent,
    SentenceRequest,
    SynthesisOptions,
)
from stream_server.engine.scheduler import ChunkConfig, SchedulerConfig, chunk_bounds
from stream_server.server.events import Audio, Flushed, SentenceEnd, SentenceStart
from stream_server.server.session import Session, SessionSettings
from stream_server.text.segmenter import SegmenterLimits

C, HOP, RATE = 2, 16, 8000
CHUNKS = ChunkConfig(first_chunk_frames=6, chunk_frames=12, left_context=2, right_context=2)
OUT = OutputSpec(RATE, "pcm_f32le")


class ToyVoice:
    """Non-autoregressive like Piper VITS (all frames at prefill), frames from text and seed."""

    name = "toy"
    sample_rate = RATE
    hop_length = HOP
    latent_channels = C

    def __init__(self, max_slots: int = 4) -> None:
        self.max_slots = max_slots
        self.vocode_delay = 0.0

    def prefill(self, slot: int, text: str, options: SynthesisOptions) -> PrefillOutput:
        if "FAIL" in text:
            raise ValueError("cannot say that")
        n = 3 * len(text)
        g = torch.Generator().manual_seed(options.seed)
        return PrefillOutput(n, torch.randn(C, n, generator=g))

    def decode_step(self, slots):
        raise RuntimeError("non-autoregressive")

    def release(self, slot: int) -> None:
        pass

    def vocode(self, windows: torch.Tensor) -> torch.Tensor:
        time.sleep(self.vocode_delay)
        return torch.tanh(windows.sum(1)).repeat_interleave(HOP, dim=-1)


class CountingEngine(Engine):
    """The real engine; remembers what it was asked to synthesize."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.submitted: list[str] = []

    def submit(self, request: SentenceRequest) -> None:
        self.submitted.append(request.text)
        super().submit(request)


class Listener:
    """One subscriber (a session's ticket, in the server)."""

    def __init__(self, session: str = "s1", context: str = "default") -> None:
        self.session, self.context = session, context
        self.events: list = []
        self.done = asyncio.Event()
        self.first = asyncio.Event()

    def deliver(self, event) -> None:
        self.events.append(event)
        self.first.set()
        if isinstance(event, ErrorEvent) or event.last:
            self.done.set()

    def request(self, text: str, ordinal: int = 0) -> SentenceRequest:
        options = SynthesisOptions(seed=spoken_seed(text))
        return SentenceRequest(self.session, self.context, spoken_form(text), "toy", options, ordinal, self.deliver)

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate([e.pcm for e in self.events])

    @property
    def cached(self) -> bool:
        return all(e.cached for e in self.events)

    def framing(self) -> list[tuple[int, int, bool]]:
        return [(e.index, len(e.pcm), e.last) for e in self.events]


class Rig:
    def __init__(self, redis_proc: EmbeddedRedis, cache_cls=SentenceCache) -> None:
        self.redis = redis_proc
        self.voice = ToyVoice()
        self.engine = CountingEngine({"toy": self.voice}, EngineConfig(SchedulerConfig(4, 10_000, CHUNKS)))
        self.engine.start()
        client = make_client(redis_proc.url, 0.1, 4)
        self.cache = cache_cls(client, ttl_s=60, retry_after_s=0.2)
        self.source = CachedSource(self.engine, self.cache, KeyBuilder({"toy": "toy-v1"}), CHUNKS, {"toy": (RATE, HOP)})
        self.inspect = aioredis.from_url(redis_proc.url)

    async def say(self, text: str, listener: Listener | None = None, timeout: float = 10) -> Listener:
        listener = listener or Listener()
        self.source.submit(listener.request(text), OUT)
        await asyncio.wait_for(listener.done.wait(), timeout)
        await self.source.drain()  # the store after the last chunk
        return listener

    async def close(self) -> None:
        await self.source.close()
        await self.cache.close()
        await self.inspect.aclose()
        self.engine.stop()


@pytest.fixture
def redis_proc(tmp_path):
    with EmbeddedRedis(find_redis_server(), max_memory_mb=16, workdir=str(tmp_path)) as server:
        yield server


@pytest.fixture
async def rig(redis_proc):
    rig = Rig(redis_proc)
    yield rig
    await rig.close()


async def test_miss_synthesizes_then_hit_replays_in_engine_framing(rig):
    fresh = await rig.say("Hello there, this is the toy voice.")
    assert not fresh.cached and rig.engine.submitted == ["Hello there, this is the toy voice."]
    assert await rig.inspect.dbsize() == 1
    replay = await rig.say("Hello there, this is the toy voice.")
    assert replay.cached and len(rig.engine.submitted) == 1
    assert replay.framing() == fresh.framing()  # same chunk sizes as the engine's
    frames = len(fresh.audio) // HOP
    assert [n // HOP for _, n, _ in replay.framing()] == [b - a for a, b in chunk_bounds(frames, CHUNKS)]
    assert np.array_equal(replay.audio, fresh.audio)
    assert rig.cache.stats["hit"] == 1 and rig.cache.stats["miss"] == 1


async def test_same_spoken_form_hits_other_spelling_misses(rig):
    await rig.say("He said \u201cyes\u201d to the US team.")
    same = await rig.say('He said "yes"   to the US team. ')
    assert same.cached
    other = await rig.say('He said "yes" to the us team.')
    assert not other.cached and len(rig.engine.submitted) == 2


async def test_same_sentence_at_the_same_moment_is_synthesized_once(rig):
    rig.voice.vocode_delay = 0.02
    text = "Everyone asks for this sentence at the very same moment."
    listeners = [Listener(session=f"s{i}") for i in range(5)]
    for listener in listeners:
        rig.source.submit(listener.request(text), OUT)
    await asyncio.wait_for(asyncio.gather(*(l.done.wait() for l in listeners)), 10)
    await rig.source.drain()
    assert rig.engine.submitted == [text]
    for listener in listeners[1:]:
        assert listener.framing() == listeners[0].framing()
        assert np.array_equal(listener.audio, listeners[0].audio)
    assert rig.cache.stats["joined"] == 4 and rig.cache.stats["store"] == 1
    assert (await rig.say(text, Listener("after"))).cached  # once done, it is a hit


async def test_late_joiner_gets_every_chunk_of_the_running_synthesis(rig):
    rig.voice.vocode_delay = 0.05
    text = "A long sentence whose synthesis is still running when the second session asks for it."
    first, second = Listener("a"), Listener("b")
    rig.source.submit(first.request(text), OUT)
    await asyncio.wait_for(first.first.wait(), 10)
    assert not first.done.is_set()
    rig.source.submit(second.request(text), OUT)
    await asyncio.wait_for(asyncio.gather(first.done.wait(), second.done.wait()), 20)
    assert len(rig.engine.submitted) == 1 and len(first.events) > 2
    assert second.framing() == first.framing() and np.array_equal(second.audio, first.audio)


async def test_store_happens_only_after_the_last_chunk_went_out(redis_proc):
    seen_at_put: list[tuple[int, bool]] = []
    listener = Listener()

    class WatchedCache(SentenceCache):
        async def put(self, key, entry):
            seen_at_put.append((len(listener.events), listener.done.is_set()))
            await super().put(key, entry)

    rig = Rig(redis_proc, WatchedCache)
    try:
        await rig.say("Stored after it was sent.", listener)
        assert seen_at_put == [(len(listener.events), True)]
    finally:
        await rig.close()


async def test_cancelled_sentence_is_dropped_and_never_stored(rig):
    rig.voice.vocode_delay = 0.05
    text = "This sentence is cancelled while it is being synthesized, so it must not be cached."
    listener = Listener("gone")
    rig.source.submit(listener.request(text), OUT)
    await asyncio.wait_for(listener.first.wait(), 10)
    rig.source.cancel(CancelRequest("gone"))
    for _ in range(200):
        if not rig.engine.scheduler.has_work():
            break
        await asyncio.sleep(0.02)
    assert not rig.engine.scheduler.has_work()
    await asyncio.sleep(0.1)
    await rig.source.drain()
    assert not listener.done.is_set() and await rig.inspect.dbsize() == 0
    assert rig.source.in_flight() == 0


async def test_one_subscriber_cancelling_does_not_cut_the_others(rig):
    rig.voice.vocode_delay = 0.03
    text = "Two sessions share this sentence and only one of them cancels it."
    stays, leaves = Listener("stays"), Listener("leaves")
    rig.source.submit(stays.request(text), OUT)
    rig.source.submit(leaves.request(text), OUT)
    await asyncio.wait_for(stays.first.wait(), 10)
    rig.source.cancel(CancelRequest("leaves", "default"))
    await asyncio.wait_for(stays.done.wait(), 20)
    await rig.source.drain()
    assert not leaves.done.is_set() and stays.events[-1].last
    assert await rig.inspect.dbsize() == 1  # complete audio: stored


async def test_failed_sentence_is_reported_to_all_and_never_stored(rig):
    a, b = Listener("a"), Listener("b")
    rig.source.submit(a.request("FAIL to speak this."), OUT)
    rig.source.submit(b.request("FAIL to speak this."), OUT)
    await asyncio.wait_for(asyncio.gather(a.done.wait(), b.done.wait()), 10)
    assert isinstance(a.events[-1], ErrorEvent) and isinstance(b.events[-1], ErrorEvent)
    await rig.source.drain()
    assert await rig.inspect.dbsize() == 0
    again = await rig.say("FAIL to speak this.")
    assert isinstance(again.events[-1], ErrorEvent) and len(rig.engine.submitted) == 2


async def test_redis_down_synthesis_goes_on_then_cache_resumes(rig):
    rig.redis.kill()
    down = await rig.say("Redis is down for this one.")
    assert not down.cached and isinstance(down.events[-1], AudioEvent) and down.events[-1].last
    assert rig.cache.stats["redis_error"] >= 1
    rig.redis.start()
    await asyncio.sleep(0.25)  # retry_after_s
    await rig.say("Redis is back for this one.")
    assert (await rig.say("Redis is back for this one.")).cached


async def test_session_order_holds_when_a_later_sentence_is_a_hit(rig):
    await rig.say("Bravo two.")  # cached beforehand
    rig.voice.vocode_delay = 0.05  # the uncached first sentence is slow
    events: list = []

    async def emit(event) -> None:
        events.append(event)

    session = Session(
        rig.source, {"toy": RATE}, SessionSettings("toy", RATE, "pcm_f32le"), emit, SegmenterLimits(), 1000
    )
    await session.start()
    await session.text("Alpha one is a rather long sentence to synthesize. Bravo two. ")
    await session.flush()
    for _ in range(500):
        if any(isinstance(e, Flushed) for e in events):
            break
        await asyncio.sleep(0.02)
    await session.close()
    kinds = [(type(e).__name__, getattr(e, "index", None)) for e in events if not isinstance(e, Audio)]
    assert kinds == [
        ("Ready", None), ("SentenceStart", 0), ("SentenceEnd", 0),
        ("SentenceStart", 1), ("SentenceEnd", 1), ("Flushed", None),
    ]
    audio_owner = None
    for e in events:
        if isinstance(e, SentenceStart):
            audio_owner = e.index
        elif isinstance(e, Audio):
            assert e.index == audio_owner
    ends = [e for e in events if isinstance(e, SentenceEnd)]
    assert [e.cached for e in ends] == [False, True]
