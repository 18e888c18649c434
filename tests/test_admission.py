"""Admission control on a real server (docs/limits.md, "Admission"): past its capacity, new
sessions are refused clearly on every protocol (`overloaded`, a retry hint, close 1013, HTTP 503
with Retry-After), the sessions already served still speak in full, a session back from idle gets
its text only within capacity, and afterwards nothing is left and new sessions are admitted again.

The server's capacity is pinned to its initial estimate (2 sessions: no amount of audio counts as
measured), so the test does not depend on this machine's speed; the measured capacity is
tests/test_admission_policy.py's and bench/bench_admission.py's."""

from __future__ import annotations

import asyncio
import contextlib
import json

import openai
import pytest
import websockets
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from background import BackgroundServer, free_port
from stream_server.config import AppConfig
from waiting import wait_until
from wsutil import Transcript, receive_until, send_json

pytestmark = pytest.mark.slow

CAPACITY = 2
RETRY_AFTER = 7
IDLE_RELEASE = 3.0
MAX_QUEUED = 3
TWO_SENTENCES = "The first sentence of this session is here. And a second one follows it."
LONG_TEXT = " ".join(f"Sentence number {i} keeps this session busy for a while." for i in range(MAX_QUEUED))


@pytest.fixture(scope="module")
def server():
    config = AppConfig.model_validate({
        "server": {"port": free_port()},
        "engine": {"warmup": False},
        "wyoming": {"port": free_port()},
        "cache": {"enabled": False},  # every sentence synthesized
        "admission": {
            "initial_streams": CAPACITY, "min_measured_audio_seconds": 1e9,  # never measured: pinned
            "idle_release_seconds": IDLE_RELEASE, "retry_after_seconds": RETRY_AFTER,
            "max_queued_sentences": MAX_QUEUED,
        },
    })
    with BackgroundServer(config) as running:
        yield running


@pytest.fixture
async def idle_server(server):
    """The server with no session counted as load (and, after the test, none left at all)."""
    await settled(server, "no session to be counted as load")
    yield server
    await wait_until(lambda: not server.services.sessions, timeout=30, what="every session to be dropped")
    await settled(server, "nothing left in the engine or the sessions")


async def settled(server, what: str) -> None:
    services = server.services

    def quiet() -> bool:
        sessions = list(services.sessions.values())
        return (services.admission.load(sessions).active_sessions == 0
                and services.client.in_flight() == 0 and services.engine.stats.waiting == 0)

    await wait_until(quiet, timeout=60, what=what)


def native_url(server) -> str:
    return f"{server.url}/v1/tts/stream"


async def busy_session(stack: contextlib.AsyncExitStack, server, text: str = TWO_SENTENCES):
    """An admitted native session with `text` sent and flushed (so it has work in hand)."""
    ws = await stack.enter_async_context(websockets.connect(native_url(server), max_size=None))
    assert json.loads(await ws.recv())["type"] == "ready"
    await send_json(ws, type="text", text=text)
    await send_json(ws, type="flush")
    return ws


async def speaks_in_full(ws, text: str = TWO_SENTENCES) -> list[dict]:
    """Until the flush is answered: every sentence of `text` with its audio. Returns the errors."""
    t = Transcript()
    await receive_until(ws, t, "flushed", timeout=120)
    assert " ".join(t.sentences()) == text and all(len(pcm) > 0 for pcm in t.audio.values())
    return [m for m in t.messages if m["type"] == "error"]


async def refused_native(server) -> dict:
    async with websockets.connect(native_url(server)) as ws:
        error = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1013  # Try Again Later
    return error


def openai_client(server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.http + "/v1", api_key="x", max_retries=0, timeout=120)


async def speech(server) -> bytes:
    reply = await openai_client(server).audio.speech.create(
        model="tts-1", voice="alloy", input="Admitted again.", response_format="pcm"
    )
    return reply.content


def refusals(server) -> float:
    registry = server.services.metrics.registry
    return sum(registry.get_sample_value("tts_admission_refusals_total", {"reason": r}) or 0.0
               for r in ("capacity", "max_sessions"))


async def test_past_capacity_sessions_are_refused_and_the_admitted_ones_speak_in_full(idle_server):
    server = idle_server
    before = refusals(server)
    async with contextlib.AsyncExitStack() as stack:
        first, second = [await busy_session(stack, server) for _ in range(CAPACITY)]
        error = await refused_native(server)
        assert error["type"] == "error" and error["code"] == "overloaded"
        assert error["retry_after"] == RETRY_AFTER and "capacity" in error["message"]
        with pytest.raises(openai.InternalServerError) as refused:
            await speech(server)
        assert refused.value.status_code == 503
        assert refused.value.response.headers["retry-after"] == str(RETRY_AFTER)
        assert refused.value.body["code"] == "overloaded"
        assert await asyncio.gather(speaks_in_full(first), speaks_in_full(second)) == [[], []]
    assert refusals(server) - before == 2
    await wait_until(lambda: not server.services.sessions, timeout=30, what="the sessions to be dropped")
    await settled(server, "the finished sessions to stop counting as load")
    assert len(await speech(server)) > 0  # admitted again
    scraped = server.services.render_metrics()
    assert b"tts_admission_active_sessions 0.0" in scraped and b"tts_session_queued_sentences 0.0" in scraped


async def test_every_protocol_says_overloaded_in_its_own_way(idle_server):
    server = idle_server
    async with contextlib.AsyncExitStack() as stack:
        busy = [await busy_session(stack, server) for _ in range(CAPACITY)]
        with pytest.raises(websockets.InvalidStatus) as deepgram:  # refused at the handshake
            async with websockets.connect(f"{server.url}/v1/speak"):
                pass
        response = deepgram.value.response
        assert response.status_code == 503 and response.headers["retry-after"] == str(RETRY_AFTER)
        assert json.loads(response.body)["err_code"] == "overloaded"
        for path in ("stream-input", "multi-stream-input"):
            async with websockets.connect(f"{server.url}/v1/text-to-speech/joe_ar/{path}") as ws:
                if path == "stream-input":  # refused once its first message brought the settings
                    await ws.send(json.dumps({"text": " "}))
                reply = json.loads(await ws.recv())
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
            assert (reply["error"], reply["code"], reply["retry_after"]) == ("overloaded", 1013, RETRY_AFTER)
            assert closed.value.rcvd.code == 1013
        client = AsyncTcpClient("127.0.0.1", server.config.wyoming.port)
        await client.connect()
        await client.write_event(Synthesize(text="Hello.").event())
        event = await client.read_event()
        await client.disconnect()
        assert event.type == "error" and event.data["code"] == "overloaded"
        assert f"try again in {RETRY_AFTER} s" in event.data["text"]
        assert await asyncio.gather(*(speaks_in_full(ws) for ws in busy)) == [[]] * CAPACITY


async def test_a_session_back_from_idle_gets_its_text_only_within_capacity(idle_server):
    server = idle_server
    async with contextlib.AsyncExitStack() as stack:
        returning = await busy_session(stack, server)
        assert await speaks_in_full(returning) == []
        await settled(server, f"the session to go idle ({IDLE_RELEASE:g} s without text or audio)")
        others = [await busy_session(stack, server) for _ in range(CAPACITY)]  # it is not load: admitted
        await send_json(returning, type="text", text="Back again.")
        error = json.loads(await returning.recv())
        assert (error["type"], error["code"], error["retry_after"]) == ("error", "overloaded", RETRY_AFTER)
        assert await asyncio.gather(*(speaks_in_full(ws) for ws in others)) == [[]] * CAPACITY
        await settled(server, "the other sessions to go idle")
        await send_json(returning, type="text", text="Back again.")  # the same session goes on
        await send_json(returning, type="flush")
        assert await speaks_in_full(returning, "Back again.") == []


async def test_a_session_with_too_many_sentences_queued_gets_no_more_text(idle_server):
    async with contextlib.AsyncExitStack() as stack:
        ws = await busy_session(stack, idle_server, LONG_TEXT)  # MAX_QUEUED sentences at once
        await send_json(ws, type="text", text="One more.")  # refused: the queue is full
        [error] = await speaks_in_full(ws, LONG_TEXT)  # the queue goes on
        assert error["code"] == "too_many_queued_sentences" and "retry_after" not in error
        await send_json(ws, type="text", text="One more.")  # room again
        await send_json(ws, type="flush")
        assert await speaks_in_full(ws, "One more.") == []


async def test_white_space_and_half_sentences_keep_no_session_load(idle_server):
    """Sessions that left half a sentence and then send only white space (or keepalives) stop
    being load after admission.idle_release_seconds: they cannot keep everyone else out; and white
    space that would end such a sentence is asked about like any text."""
    server = idle_server
    async with contextlib.AsyncExitStack() as stack:
        holders = []
        for _ in range(CAPACITY):
            ws = await stack.enter_async_context(websockets.connect(native_url(server), max_size=None))
            assert json.loads(await ws.recv())["type"] == "ready"
            await send_json(ws, type="text", text="Half a sentence that never")
            holders.append(ws)
        for _ in range(int(2 * IDLE_RELEASE)):  # well past the release time, white space all along
            for ws in holders:
                await send_json(ws, type="text", text=" ")
            await asyncio.sleep(1.0)
        assert server.services.admission.load(list(server.services.sessions.values())).active_sessions == 0
        others = [await busy_session(stack, server) for _ in range(CAPACITY)]  # admitted: nobody is load
        await send_json(holders[0], type="text", text="\n")  # would end its sentence: not within capacity
        await send_json(holders[1], type="flush")  # likewise
        for ws in holders:
            error = json.loads(await ws.recv())
            assert (error["type"], error["code"]) == ("error", "overloaded")
        assert await asyncio.gather(*(speaks_in_full(ws) for ws in others)) == [[]] * CAPACITY
