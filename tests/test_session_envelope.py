"""Every protocol opens its sessions through the one envelope (Services.open_session): each session
logs a start and an end, each error a client is told about is counted exactly once, and nothing is
left behind, whatever the wire."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
import websockets
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from waiting import wait_until
from wsutil import Transcript, receive_until, send_json

pytestmark = pytest.mark.slow


def errors(server, code: str) -> float:
    return server.services.metrics.registry.get_sample_value("tts_errors_total", {"code": code}) or 0.0


def sessions_of(caplog, protocol: str) -> tuple[set[str], set[str]]:
    """(started, ended) session ids of one protocol, from the log lines."""
    started = {
        m.group(1) for r in caplog.records
        if (m := re.search(rf"event=session_start session_id=(\w+) protocol={protocol}\b", r.getMessage()))
    }
    pattern = re.compile(r"event=session_end session_id=(\w+)")
    ended = {m.group(1) for r in caplog.records if (m := pattern.search(r.getMessage()))}
    return started, ended


async def native(server) -> None:
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        await ws.recv()
        await ws.send("{not json")  # an error the session survives
        await send_json(ws, type="text", text="Envelope check.")
        await send_json(ws, type="flush")
        await receive_until(ws, Transcript(), "flushed", timeout=60)
    async with websockets.connect(f"{server.url}/v1/tts/stream?voice=nobody") as ws:
        assert json.loads(await ws.recv())["code"] == "unknown_voice"


async def openai(server) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
        body = {"model": "tts-1", "voice": "alloy", "input": "Envelope check.", "response_format": "pcm"}
        assert (await client.post("/v1/audio/speech", json=body)).status_code == 200
        r = await client.post("/v1/audio/speech", json={**body, "voice": "nobody"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_voice"


async def elevenlabs(server) -> None:
    url = f"{server.url}/v1/text-to-speech/joe_ar/stream-input?output_format=pcm_22050"
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"text": "Envelope check. "}))
        await ws.send(json.dumps({"text": ""}))
        while not json.loads(await ws.recv()).get("isFinal"):
            pass
    async with websockets.connect(url.replace("joe_ar", "nobody")) as ws:
        assert json.loads(await ws.recv())["error"] == "unknown_voice"


async def deepgram(server) -> None:
    async with websockets.connect(f"{server.url}/v1/speak?sample_rate=22050", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "Speak", "text": "Envelope check."}))
        await ws.send(json.dumps({"type": "Flush"}))
        while not (isinstance(frame := await ws.recv(), str) and json.loads(frame)["type"] == "Flushed"):
            pass
    with pytest.raises(websockets.InvalidStatus):  # refused at the handshake, never started
        async with websockets.connect(f"{server.url}/v1/speak?encoding=alaw"):
            pass


async def elevenlabs_multi(server) -> None:
    url = f"{server.url}/v1/text-to-speech/joe_ar/multi-stream-input?output_format=pcm_22050"
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"text": "Envelope check.", "context_id": "a", "flush": True}))
        await ws.send(json.dumps({"context_id": "a", "close_context": True}))
        while not json.loads(await ws.recv()).get("isFinal"):
            pass
    async with websockets.connect(url.replace("joe_ar", "nobody")) as ws:
        assert json.loads(await ws.recv())["error"] == "unknown_voice"


async def wyoming(server) -> None:
    client = AsyncTcpClient("127.0.0.1", server.config.wyoming.port)
    await client.connect()
    try:
        for voice, last in ((None, "audio-stop"), ("nobody", "error")):
            name = SynthesizeVoice(name=voice) if voice else None
            await client.write_event(Synthesize(text="Envelope check.", voice=name).event())
            while (await client.read_event()).type != last:
                pass
    finally:
        await client.disconnect()


@pytest.mark.parametrize("protocol, run, codes", [
    ("native", native, {"invalid_json": 1, "unknown_voice": 1}),
    ("openai", openai, {"unknown_voice": 1}),
    ("elevenlabs", elevenlabs, {"unknown_voice": 1}),
    ("wyoming", wyoming, {"unknown_voice": 1}),
    ("deepgram", deepgram, {"unsupported_encoding": 1}),
    ("elevenlabs_multi", elevenlabs_multi, {"unknown_voice": 1}),
])
async def test_every_protocol_logs_its_sessions_and_counts_each_error_once(server, caplog, protocol, run, codes):
    caplog.set_level(logging.INFO, logger="stream_server")
    before = {code: errors(server, code) for code in codes}
    await run(server)
    await wait_until(lambda: not server.services.sessions, timeout=10, what="every session to be dropped")
    assert {code: errors(server, code) - before[code] for code in codes} == codes
    started, ended = sessions_of(caplog, protocol)
    assert started and started <= ended, (started, ended)  # the refused ones never started
    refusals = [r.getMessage() for r in caplog.records if "event=error" in r.getMessage()]
    assert sum(f"protocol={protocol}" in m for m in refusals) == sum(codes.values())


async def test_a_draining_server_refuses_every_protocol_with_a_reason(server):
    services = server.services
    services.draining = True
    try:
        before = errors(server, "shutting_down")
        async with websockets.connect(f"{server.url}/v1/tts/stream") as ws:
            assert json.loads(await ws.recv())["code"] == "shutting_down"
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:
            body = {"model": "tts-1", "voice": "alloy", "input": "Hi."}
            r = await client.post("/v1/audio/speech", json=body)
            assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down"
        url = f"{server.url}/v1/text-to-speech/joe_ar/stream-input"
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["error"] == "shutting_down"
        client = AsyncTcpClient("127.0.0.1", server.config.wyoming.port)
        await client.connect()
        await client.write_event(Synthesize(text="Hi.").event())
        event = await client.read_event()
        await client.disconnect()
        assert event.type == "error" and event.data["code"] == "shutting_down"
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"{server.url}/v1/speak"):
                pass
        assert refused.value.response.status_code == 503 and refused.value.response.headers["dg-error"]
        async with websockets.connect(f"{url.replace('stream-input', 'multi-stream-input')}") as ws:
            assert json.loads(await ws.recv())["error"] == "shutting_down"
        assert errors(server, "shutting_down") - before == 6
        assert not services.sessions
    finally:
        services.draining = False
