"""Text that expands to thousands of phonemes, on a real server (docs/limits.md, "Expensive text"):
it is refused before the engine on every protocol (`sentence_too_expensive`), so it moves neither
another session's first audio by more than a second nor the admission measure."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from background import BackgroundServer, free_port
from stream_server.config import AppConfig
from wsutil import Transcript, decode_frame, receive_until, send_json

pytestmark = pytest.mark.slow

EXPENSIVE = (  # what issue #20 sent, ~400 characters of each: every one a sentence of its own
    "1e999999 " * 44 + "\n" + "On 12/31/1999 and 01/01/2000 " * 13 + "\n" + "the 1234567th and 9876543rd " * 14
    + "\n" + "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 " * 50 + "\n"
    + "abc \u05e9\u05dc\u05d5\u05dd \u0639\u0631\u0628\u064a 123 " * 22 + "\n"
)
KINDS = 5
WELL_BEHAVED = "The lighthouse keeper waved from the rocks as the ferry came in."


@pytest.fixture(scope="module")
def server():
    config = AppConfig.model_validate({
        "server": {"port": free_port()}, "wyoming": {"port": free_port()},
        "cache": {"enabled": False},  # every sentence synthesized: what the engine does is measured
    })
    with BackgroundServer(config) as running:
        yield running


async def first_audio(server, text: str = WELL_BEHAVED) -> float:
    """Seconds from a native session's text to its first audio."""
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        t0 = time.monotonic()
        await send_json(ws, type="text", text=text)
        await send_json(ws, type="flush")
        t, seconds = Transcript(), None
        while not t.messages or t.messages[-1]["type"] != "flushed":
            t.add(decode_frame(await asyncio.wait_for(ws.recv(), 60), False, t.current))
            if seconds is None and t.messages[-1]["type"] == "audio":
                seconds = time.monotonic() - t0
    assert seconds is not None and t.sentences() == [text]
    return seconds


async def test_expensive_text_moves_neither_first_audio_nor_the_admission_measure(server):
    services = server.services
    stats = services.engine.stats
    lone = min([await first_audio(server) for _ in range(2)])
    prefills, failed = stats.prefills, stats.finished["failed"]
    capacity = services.admission.capacity()
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as attacker:
        assert json.loads(await attacker.recv())["type"] == "ready"
        await send_json(attacker, type="text", text=EXPENSIVE)
        await send_json(attacker, type="flush")
        delayed = await first_audio(server, WELL_BEHAVED.replace("waved", "called"))
        t = Transcript()
        await receive_until(attacker, t, "flushed", timeout=60)
    assert delayed <= lone + 1.0, (lone, delayed)
    errors = [m for m in t.messages if m["type"] == "error"]
    assert [e["code"] for e in errors] == ["sentence_too_expensive"] * KINDS and not t.audio
    assert "session.max_sentence_phonemes" in errors[0]["message"]
    # nothing of it reached the engine: one prefill (the well-behaved sentence), no failure, the
    # same capacity afterwards
    assert stats.prefills - prefills == 1 and stats.finished["failed"] == failed
    assert services.admission.capacity() == capacity


async def test_every_protocol_refuses_it_in_its_own_way(server):
    sentence = "1e999999 " * 44 + "\n"
    async with websockets.connect(f"{server.url}/v1/speak") as ws:  # Deepgram: a Warning, goes on
        assert json.loads(await ws.recv())["type"] == "Metadata"
        await ws.send(json.dumps({"type": "Speak", "text": sentence}))
        await ws.send(json.dumps({"type": "Flush"}))
        warning = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert warning["type"] == "Warning" and warning["warn_code"] == "sentence_too_expensive"
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "Flushed"
    url = f"{server.url}/v1/text-to-speech/joe_ar"
    async with websockets.connect(f"{url}/stream-input?output_format=pcm_22050") as ws:
        await ws.send(json.dumps({"text": " "}))
        await ws.send(json.dumps({"text": sentence, "flush": True}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert error["error"] == "sentence_too_expensive"
    async with websockets.connect(f"{url}/multi-stream-input?output_format=pcm_22050") as ws:
        await ws.send(json.dumps({"text": sentence, "context_id": "c", "flush": True}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert error["error"] == "sentence_too_expensive" and error["contextId"] == "c"
    client = AsyncTcpClient("127.0.0.1", server.config.wyoming.port)
    await client.connect()
    try:
        await client.write_event(Synthesize(text=sentence).event())
        event = await asyncio.wait_for(client.read_event(), 30)
        assert event.type == "error" and event.data["code"] == "sentence_too_expensive"
    finally:
        await client.disconnect()
    body = {"model": "tts-1", "input": "Fine. " + sentence, "voice": "alloy", "response_format": "wav"}
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{server.http}/v1/audio/speech", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "sentence_too_expensive", r.text
