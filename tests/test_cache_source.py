"""The cache-aware sentence source with the real engine thread (a tiny fast voice) and a real
redis-server: miss -> synthesize -> store after the last chunk; hit -> replay in the engine's
framing; one synthesis for sentences asked at the same moment; cancel, failure, Redis down;
and a session's sentences stay in order when a later one is a hit."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import numpy as np
import pytest
import redis.asyncio as aioredis
import torch

from stream_server.audio.formats import OutputSpec
from stream_server.cache.embedded_redis import EmbeddedRedis, find_redis_server
from stream_server.cache.keys import KeyBuilder
from stream_server.cache.source import CachedSource
from stream_server.cache.store import SentenceCache, make_client
from stream_server.config import SessionSection
from stream_server.engine.backend import PrefillResult, keep_frames
from stream_server.engine.chunking import ChunkConfig, chunk_bounds
from stream_server.engine.client import EngineClient
from stream_server.engine.engine import Engine, EngineConfig
from stream_server.engine.requests import (
    AudioEvent,
    CancelRequest,
    ErrorEvent,
    SentenceRequest,
    SynthesisOptions,
)
from stream_server.engine.scheduler import SchedulerConfig
from stream_server.server.events import Audio, Flushed, SentenceEnd, SentenceStart
from stream_server.server.session import Session, SessionDeps
from stream_server.server.session_settings import SessionSettings, VoiceBook
from stream_server.text.spoken_form import spoken_form, spoken_seed

C, HOP, RATE = 2, 16, 8000
CHUNKS = ChunkConfig(first_chunk_frames=6, chunk_frames=12, left_context=2, right_context=2)
ENGINE = EngineConfig(SchedulerConfig(4, 10_000), first_chunk_frames=6, chunk_frames=12)
OUT = OutputSpec(RATE, "pcm_f32le")


class ToyVoice:
    """Non-autoregressive like Piper VITS (all frames at prefill), frames from text and seed.

    `pause_after(n)` lets n more vocoder calls through, then holds the engine inside the next one
    until `resume()`: a test can act while a synthesis is certainly still running."""

    name = "toy"
    sample_rate = RATE
    hop_length = HOP
    frame_channels = C
    vocoder_context = (2, 2)
    chunk_frames = None
    fingerprint = "toy-v1"

    def __init__(self, max_slots: int = 4) -> None:
        self.max_slots = max_slots
        self._calls_left: int | None = None
        self._resume = threading.Event()

    def prefill(self, slot: int, spoken: str, options: SynthesisOptions) -> PrefillResult:
        if "FAIL" in spoken:
            raise ValueError("cannot say that")
        n = 3 * len(spoken)
        g = torch.Generator().manual_seed(options.seed)
        return PrefillResult(torch.randn(C, n, generator=g), n, finished=True)

    def decode(self, slots):
        raise RuntimeError("non-autoregressive")

    def release(self, slot: int) -> None:
        pass

    def pause_after(self, calls: int) -> None:
        self._resume.clear()
        self._calls_left = calls

    def resume(self) -> None:
        self._calls_left = None
        self._resume.set()

    def vocode(self, windows: torch.Tensor, slots, spans) -> list[torch.Tensor]:
        if self._calls_left is not None:
            if self._calls_left == 0:
                assert self._resume.wait(30), "the test never resumed the voice"
            else:
                self._calls_left -= 1
        return keep_frames(torch.tanh(windows.sum(1)).repeat_interleave(HOP, dim=-1), spans, HOP)


class CountingEngine(Engine):
    """The real engine; remembers what it was asked to synthesize."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.submitted: list[str] = []

    def submit(self, request: SentenceRequest) -> None:
        self.submitted.append(request.spoken)
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
        return SentenceRequest(self.session, self.context, spoken_form(text), "toy", options, ordinal)

    def ask(self, source: CachedSource, text: str) -> None:
        source.submit(self.request(text), OUT, self.deliver)

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
        self.engine = CountingEngine({"toy": self.voice}, ENGINE)
        self.client = EngineClient(self.engine, asyncio.get_running_loop())
        self.client.start()
        client = make_client(redis_proc.url, 0.1, 4)
        self.cache = cache_cls(client, ttl_s=60, retry_after_s=0.2)
        chunks = {"toy": self.engine.chunk_config("toy")}
        self.source = CachedSource(self.client, self.cache, KeyBuilder({"toy": "toy-v1"}), chunks, {"toy": (RATE, HOP)})
        self.inspect = aioredis.from_url(redis_proc.url)

    async def say(self, text: str, listener: Listener | None = None, timeout: float = 10) -> Listener:
        listener = listener or Listener()
        listener.ask(self.source, text)
        await asyncio.wait_for(listener.done.wait(), timeout)
        await self.source.drain()  # the store after the last chunk
        return listener

    async def close(self) -> None:
        await self.source.close()
        await self.cache.close()
        await self.inspect.aclose()
        self.voice.resume()
        self.client.stop()


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
    text = "Everyone asks for this sentence at the very same moment."
    listeners = [Listener(session=f"s{i}") for i in range(5)]
    for listener in listeners:
        listener.ask(rig.source, text)
    await asyncio.wait_for(asyncio.gather(*(one.done.wait() for one in listeners)), 10)
    await rig.source.drain()
    assert rig.engine.submitted == [text]
    for listener in listeners[1:]:
        assert listener.framing() == listeners[0].framing()
        assert np.array_equal(listener.audio, listeners[0].audio)
    assert rig.cache.stats["joined"] == 4 and rig.cache.stats["store"] == 1
    assert (await rig.say(text, Listener("after"))).cached  # once done, it is a hit


async def test_late_joiner_gets_every_chunk_of_the_running_synthesis(rig):
    text = "A long sentence whose synthesis is still running when the second session asks for it."
    first, second = Listener("a"), Listener("b")
    rig.voice.pause_after(1)  # the first chunk, then the synthesis holds
    first.ask(rig.source, text)
    await asyncio.wait_for(first.first.wait(), 10)
    assert not first.done.is_set()
    second.ask(rig.source, text)
    rig.voice.resume()
    await asyncio.wait_for(asyncio.gather(first.done.wait(), second.done.wait()), 20)
    assert len(rig.engine.submitted) == 1 and len(first.events) > 2
    assert second.framing() == first.framing() and np.array_equal(second.audio, first.audio)


async def test_store_happens_only_after_the_last_chunk_went_out(redis_proc):
    seen_at_put: list[tuple[int, bool]] = []
    listener = Listener()

    class WatchedCache(SentenceCache):
        async def put(self, key, entry, shape=None):
            seen_at_put.append((len(listener.events), listener.done.is_set()))
            await super().put(key, entry, shape)

    rig = Rig(redis_proc, WatchedCache)
    try:
        await rig.say("Stored after it was sent.", listener)
        assert seen_at_put == [(len(listener.events), True)]
    finally:
        await rig.close()


async def test_cancelled_sentence_is_dropped_and_never_stored(rig):
    text = "This sentence is cancelled while it is being synthesized, so it must not be cached."
    listener = Listener("gone")
    rig.voice.pause_after(1)
    listener.ask(rig.source, text)
    await asyncio.wait_for(listener.first.wait(), 10)
    rig.source.cancel(CancelRequest("gone"))
    rig.voice.resume()
    # The engine takes its inbox in order: once a sentence sent after the cancel is done, the
    # cancel has been applied.
    await rig.say("Sent after the cancel.", Listener("later"))
    assert rig.engine.stats.finished["cancelled"] == 1
    assert not listener.done.is_set() and rig.source.in_flight() == 0
    assert await rig.inspect.dbsize() == 1  # the later sentence only
    assert not (await rig.say(text)).cached


async def test_one_subscriber_cancelling_does_not_cut_the_others(rig):
    text = "Two sessions share this sentence and only one of them cancels it."
    stays, leaves = Listener("stays"), Listener("leaves")
    rig.voice.pause_after(1)
    stays.ask(rig.source, text)
    leaves.ask(rig.source, text)
    await asyncio.wait_for(stays.first.wait(), 10)
    rig.source.cancel(CancelRequest("leaves", "default"))
    rig.voice.resume()
    await asyncio.wait_for(stays.done.wait(), 20)
    await rig.source.drain()
    assert not leaves.done.is_set() and stays.events[-1].last
    assert await rig.inspect.dbsize() == 1  # complete audio: stored


async def test_failed_sentence_is_reported_to_all_and_never_stored(rig):
    a, b = Listener("a"), Listener("b")
    a.ask(rig.source, "FAIL to speak this.")
    b.ask(rig.source, "FAIL to speak this.")
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
    await asyncio.sleep(0.25)  # the store leaves Redis alone for retry_after_s: time is what is tested
    await rig.say("Redis is back for this one.")
    assert (await rig.say("Redis is back for this one.")).cached


async def test_session_order_holds_when_a_later_sentence_is_a_hit(rig):
    await rig.say("Bravo two.")  # cached beforehand
    events: list = []
    audio, flushed = asyncio.Event(), asyncio.Event()

    async def emit(event) -> None:
        events.append(event)
        if isinstance(event, Audio):
            audio.set()
        if isinstance(event, Flushed):
            flushed.set()

    config = SessionSection(max_text_chars=1000, max_audio_ahead_seconds=0, send_stall_timeout_seconds=0)
    session = Session(SessionDeps(rig.source, VoiceBook({"toy": RATE}), emit, config),
                      SessionSettings("toy", RATE, "pcm_f32le"))
    await session.start()
    rig.voice.pause_after(1)  # the uncached first sentence holds after its first chunk...
    await session.text("Alpha one is a rather long sentence to synthesize. Bravo two. ")
    await session.flush()
    await asyncio.wait_for(audio.wait(), 10)
    rig.voice.resume()  # ...while the hit (sentence 1) is replayed at once
    await asyncio.wait_for(flushed.wait(), 20)
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


class RecordingClient:
    """The rig's real EngineClient, with a record of what the cache source asks of it."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self.calls: list[tuple] = []

    def submit(self, request, sink) -> None:
        self.calls.append(("submit", request.request_id, request.session_id))
        self.client.submit(request, sink)

    def cancel(self, cancel) -> None:
        self.calls.append(("cancel", cancel.request_id, cancel.session_id))
        self.client.cancel(cancel)

    def reassign(self, request_id, owner) -> None:
        self.calls.append(("reassign", request_id, owner.session_id))
        self.client.reassign(request_id, owner)


async def test_the_engine_sees_the_real_session_of_a_shared_synthesis(rig):
    """A miss is synthesized as its first subscriber's own sentence (the scheduler's per-session
    priorities apply with the cache on); a subscriber nearer the head of its session takes it
    over; when its owner leaves it goes on for the others; the last one to leave cancels it."""
    recorder = rig.source.client = RecordingClient(rig.client)
    text = "Three sessions share this sentence while it is being synthesized."
    late, head, third = Listener("late"), Listener("head"), Listener("third")
    rig.voice.pause_after(1)
    rig.source.submit(late.request(text, ordinal=5), OUT, late.deliver)
    await asyncio.wait_for(late.first.wait(), 10)
    ((_, rid, session),) = recorder.calls
    assert session == "late" and rid == late.events[0].request_id  # no stand-in session id
    rig.source.submit(head.request(text, ordinal=0), OUT, head.deliver)  # its session's head
    rig.source.submit(third.request(text, ordinal=2), OUT, third.deliver)
    assert recorder.calls[1:] == [("reassign", rid, "head")]
    rig.source.cancel(CancelRequest("head"))  # the owner leaves: handed on, not cancelled
    assert recorder.calls[2:] == [("reassign", rid, "late")]
    rig.source.cancel(CancelRequest("third"))  # not the owner: nothing to tell the engine
    assert recorder.calls[3:] == []
    rig.voice.resume()
    await asyncio.wait_for(late.done.wait(), 20)
    assert np.array_equal(late.audio[: len(third.audio)], third.audio)  # third got its part
    assert not head.done.is_set() and not third.done.is_set()

    last = Listener("alone")
    rig.voice.pause_after(1)
    rig.source.submit(last.request("Nobody will hear the end of this one.", ordinal=0), OUT, last.deliver)
    await asyncio.wait_for(last.first.wait(), 10)
    rig.source.cancel(CancelRequest("alone", "default"))
    rid = recorder.calls[-1][1]
    assert recorder.calls[-1] == ("cancel", rid, None)  # by request id: nobody else's sentence
    rig.voice.resume()
    await rig.say("Sent after the cancel.", Listener("later"))  # the engine took the cancel
    assert rig.engine.stats.finished["cancelled"] == 1 and not last.done.is_set()


def tagged(codec, header: dict) -> bytes:
    """An entry with any header, tagged with the cache's own secret (a buggy or older writer)."""
    import msgpack

    from stream_server.cache.codec import MAGIC

    body = MAGIC + msgpack.packb(header, use_bin_type=True)
    return body + codec._tag(body)


async def test_a_poisoned_entry_is_never_played_the_sentence_is_synthesized(rig):
    """Entries planted in Redis: bad word timings under the right secret (they once made a
    session wait forever), good-looking audio under another secret, audio of another voice shape.
    Each is refused and deleted; the sentence is synthesized, sent whole and stored in its place."""
    from stream_server.cache.codec import EntryCodec

    text = "Somebody planted this sentence."
    key = rig.source.keys.key(Listener().request(text), OUT)
    name = key.redis_name(rig.cache.key_prefix)
    pcm = np.full(10 * HOP, 0.5, "<f4").tobytes()
    header = {"spoken": key.spoken, "material": key.material, "rate": RATE, "hop": HOP, "timings": [], "pcm": pcm}
    planted = [
        tagged(rig.cache.codec, header | {"timings": [[0, 3], [1, 99]]}),
        tagged(rig.cache.codec, header | {"timings": [["x", None]]}),
        tagged(EntryCodec(b"someone else"), header),
        tagged(rig.cache.codec, header | {"rate": RATE * 2}),
    ]
    fresh = None
    for blob in planted:
        await rig.inspect.set(name, blob)
        got = await rig.say(text)
        assert not got.cached and isinstance(got.events[-1], AudioEvent) and got.events[-1].last
        assert not np.all(got.audio == 0.5)
        if fresh is not None:
            assert np.array_equal(got.audio, fresh.audio)
        fresh = got
        replay = await rig.say(text)  # the synthesis replaced the planted entry
        assert replay.cached and np.array_equal(replay.audio, fresh.audio)
    assert rig.cache.stats["corrupt"] == 3 and rig.cache.stats["unauthenticated"] == 1
    assert len(rig.engine.submitted) == len(planted)


async def test_a_sentence_on_a_shared_generator_is_never_cached(rig):
    """An api_v2 request with a fixed seed (SynthesisOptions.shared_rng): a sentence's audio depends
    on its request's earlier sentences, so it is synthesized every time, never stored nor shared,
    and a cancel of its session still reaches the engine."""
    text = "This sentence draws from its request's one generator."

    def ask(listener: Listener) -> int:
        r = listener.request(text)
        rig.source.submit(replace(r, options=replace(r.options, shared_rng=("request", 3))), OUT, listener.deliver)
        return r.request_id

    for session in ("a", "b"):
        listener = Listener(session)
        ask(listener)
        await asyncio.wait_for(listener.done.wait(), 10)
        assert not listener.cached
    assert rig.engine.submitted == [text, text] and await rig.inspect.dbsize() == 0
    sent: list[CancelRequest] = []
    real_cancel = rig.client.cancel
    rig.client.cancel = lambda cancel: sent.append(cancel) or real_cancel(cancel)
    gone = Listener("gone")
    rig.voice.pause_after(0)  # it cannot finish before the cancel
    request_id = ask(gone)
    rig.source.cancel(CancelRequest("someone else"))
    rig.source.cancel(CancelRequest("gone"))
    rig.voice.resume()
    assert sent == [CancelRequest(request_id=request_id)]  # that sentence only, by its id
