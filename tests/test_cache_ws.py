"""The sentence cache over the real WebSocket: the session-scoped server runs its cache on the
tests' redis-server (conftest.redis_server), which these tests also kill and restart."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis
import websockets

from waiting import wait_out, wait_until
from wsutil import Transcript, max_diff, receive_until, send_json

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767


async def speak(server, text: str, query: str = "") -> Transcript:
    t = Transcript()
    async with websockets.connect(f"{server.url}/v1/tts/stream{query}", max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await send_json(ws, type="text", text=text)
        await send_json(ws, type="flush")
        await receive_until(ws, t, "flushed", timeout=120)
    return t


def ends(t: Transcript) -> list[dict]:
    return [m for m in t.messages if m["type"] == "sentence_end"]


def counts(server) -> dict:
    return dict(server.services.cache.stats.counts)


async def test_repeated_sentence_is_cached_with_the_same_audio(server, offline):
    text = "The lighthouse keeper waved at the passing ships."
    first = await speak(server, text)
    second = await speak(server, text)
    assert [e["cached"] for e in ends(first)] == [False]
    assert [e["cached"] for e in ends(second)] == [True]
    key = ("default", 0)
    assert bytes(second.audio[key]) == bytes(first.audio[key])  # bit for bit
    assert ends(second)[0]["samples"] == ends(first)[0]["samples"]
    assert max_diff(second.pcm16(key), offline(text)) <= TOL
    # the same framing: as many audio frames, of the same sizes
    sizes = lambda t: [len(m["pcm"]) for m in t.messages if m["type"] == "audio"]  # noqa: E731
    assert sizes(second) == sizes(first) and len(sizes(first)) > 1
    # another spelling of the same spoken form is the same entry
    variant = await speak(server, "The lighthouse  keeper waved at the passing ships. ")
    assert ends(variant)[0]["cached"] and bytes(variant.audio[key]) == bytes(first.audio[key])
    import httpx

    async with httpx.AsyncClient(base_url=server.http) as http:
        metrics = (await http.get("/metrics")).text
    hits = next(line for line in metrics.splitlines() if line.startswith('tts_cache_total{result="hit"}'))
    assert float(hits.split()[-1]) >= 2


async def test_other_output_format_or_case_is_its_own_entry(server):
    text = "The US navy sailed at dawn."
    assert not ends(await speak(server, text))[0]["cached"]
    assert not ends(await speak(server, "The us navy sailed at dawn."))[0]["cached"]
    f32 = "?format=pcm_f32le&sample_rate=16000"
    assert not ends(await speak(server, text, f32))[0]["cached"]
    again = await speak(server, text, f32)
    assert ends(again)[0]["cached"] and ends(again)[0]["samples"] == len(again.audio[("default", 0)]) // 4


async def test_two_sessions_asking_at_once_cause_one_synthesis(server):
    text = "Both travelers asked the innkeeper for the same room at once."
    before = counts(server)
    a, b = await asyncio.gather(speak(server, text), speak(server, text))
    after = counts(server)
    assert after.get("synthesized", 0) - before.get("synthesized", 0) == 1
    key = ("default", 0)
    assert bytes(a.audio[key]) == bytes(b.audio[key])
    assert not all(ends(t)[0]["cached"] for t in (a, b))  # one of them waited for the synthesis


def redis_calls_failed_or_skipped(server) -> int:
    c = counts(server)
    return c.get("redis_error", 0) + c.get("redis_skipped", 0)


async def test_redis_killed_and_restarted_during_a_session(server, redis_server, offline):
    t = Transcript()
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        await ws.recv()
        stores = counts(server).get("store", 0)
        await send_json(ws, type="text", text="The first words arrive while Redis is fine. ")
        await send_json(ws, type="flush")
        await receive_until(ws, t, "flushed")
        # the sentence is written to Redis after its audio went out: let that write land first
        await wait_until(
            lambda: counts(server).get("store", 0) > stores, timeout=10, what="the first sentence's cache write"
        )
        before = counts(server).get("redis_error", 0)
        faults_before = redis_calls_failed_or_skipped(server)
        redis_server.kill()
        await send_json(ws, type="text", text="These words arrive while Redis is dead. ")
        await send_json(ws, type="flush")
        await receive_until(ws, t, "flushed")
        assert counts(server).get("redis_error", 0) > before
        # The sentence's lookup failed; its write (after the audio) fails or is skipped too. Once
        # both are counted, no Redis call is pending: the breaker opened at the latest by now.
        await wait_until(
            lambda: redis_calls_failed_or_skipped(server) >= faults_before + 2,
            timeout=10,
            what="the dead-Redis sentence's lookup and write to fail or be skipped",
        )
        last_fault_by = time.monotonic()
        redis_server.start()
        # The server leaves Redis alone for retry_after_s after a fault: time itself is the
        # behaviour, so wait out that interval; the next sentence's lookup and write reach Redis.
        await wait_out(last_fault_by + server.config.cache.retry_after_s)
        await send_json(ws, type="text", text="Redis came back before these words. ")
        await send_json(ws, type="flush")
        await receive_until(ws, t, "flushed")
    assert "error" not in t.types()
    assert [e["cached"] for e in ends(t)] == [False, False, False]
    for i, sentence in enumerate(t.sentences()):
        assert max_diff(t.pcm16(("default", i)), offline(sentence)) <= TOL
    # the cache is used again: the last sentence was written to the restarted Redis and hits
    inspect = aioredis.from_url(redis_server.url)
    assert await inspect.dbsize() >= 1
    await inspect.aclose()
    assert ends(await speak(server, "Redis came back before these words."))[0]["cached"]
