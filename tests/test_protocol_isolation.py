"""Bad and aborted requests on the compatibility protocols, running beside a good native session,
never disturb it (and leave no session behind)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.tts import Synthesize, SynthesizeVoice

from waiting import event_or_failure, wait_until
from wsutil import Transcript, max_diff, receive_until, send_json

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767


async def good_native_session(server, live: asyncio.Event, others_done: asyncio.Event) -> Transcript:
    """A native session that is mid-stream for as long as the bad requests run: `live` is set
    once its first sentence is being spoken while its second is still half written; it reads
    its audio meanwhile and finishes the text only when `others_done` is set."""
    t = Transcript()
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        await ws.recv()  # ready
        for piece in ["A good native", " session keeps", " going. While", " others fail"]:
            await send_json(ws, type="text", text=piece)
        await receive_until(ws, t, "sentence_start", timeout=120)
        live.set()
        reading = asyncio.create_task(receive_until(ws, t, "flushed", timeout=120))
        try:
            await others_done.wait()
            await send_json(ws, type="text", text="!")
            await send_json(ws, type="flush")
        except BaseException:
            reading.cancel()
            raise
        await reading
    return t


async def bad_openai(server) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
        r = await client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "nobody", "input": "Hi."})
        assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_voice"
        r = await client.post("/v1/audio/speech", content=b"{oops")
        assert r.status_code == 400
        # a client that goes away in the middle of a streamed response
        body = {"model": "tts-1", "voice": "alloy", "input": "Abandoned. " * 8, "response_format": "pcm"}
        async with client.stream("POST", "/v1/audio/speech", json=body) as response:
            async for _ in response.aiter_bytes():
                break


async def bad_wyoming(server) -> None:
    async with AsyncTcpClient(server.config.wyoming.host, server.config.wyoming.port) as client:
        await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="nobody")).event())
        event = await asyncio.wait_for(client.read_event(), 30)
        assert Error.from_event(event).code == "unknown_voice"


async def bad_elevenlabs(server) -> None:
    async with websockets.connect(f"{server.url}/v1/text-to-speech/joe/stream-input") as ws:
        await ws.send("{not json")
        assert json.loads(await ws.recv())["error"] == "invalid_json"


async def test_bad_requests_beside_a_good_native_session(server, offline):
    live, others_done = asyncio.Event(), asyncio.Event()
    native = asyncio.create_task(good_native_session(server, live, others_done))
    await event_or_failure(live, native, timeout=130, what="the native session to be mid-stream")
    try:
        await asyncio.gather(bad_openai(server), bad_wyoming(server), bad_elevenlabs(server))
    finally:
        others_done.set()
    t = await native
    assert t.sentences() == ["A good native session keeps going.", "While others fail!"]
    for key, sentence in zip(t.order, t.sentences()):
        assert max_diff(t.pcm16(key), offline(sentence)) <= TOL
    await wait_until(  # every session of the failed requests (and the good one) is gone
        lambda: not server.services.sessions,
        timeout=5,
        what=lambda: f"every session to be dropped (left: {list(server.services.sessions)})",
    )
