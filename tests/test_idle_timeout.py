"""Keepalive and the idle timeout of every protocol that holds a session between messages (native,
Deepgram, ElevenLabs stream-input and multi-stream-input, Wyoming's streaming runs), and slow
requests, on a server of its own with a short `session.idle_timeout_seconds` and
`server.request_timeout_seconds` (module-scoped: started once for these tests)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import msgpack
import pytest
import websockets

from background import BackgroundServer, free_port
from stream_server.config import AppConfig
from wsutil import Transcript, receive_until, send_json

pytestmark = pytest.mark.slow

IDLE = 1.0
REQUEST_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def idle_server():
    config = AppConfig()
    config.server.port = free_port()
    config.wyoming.port = free_port()
    config.engine.warmup = False
    config.cache.enabled = False
    config.session.idle_timeout_seconds = IDLE
    config.server.request_timeout_seconds = REQUEST_TIMEOUT
    with BackgroundServer(config) as running:
        yield running


async def expect_idle_close(ws, msgpack_mode: bool = False) -> None:
    frame = await asyncio.wait_for(ws.recv(), 10 * IDLE)
    err = msgpack.unpackb(frame) if msgpack_mode else json.loads(frame)
    assert err["type"] == "error" and err["code"] == "idle_timeout" and "keepalive" in err["message"]
    with pytest.raises(websockets.ConnectionClosedOK) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 1000


async def test_silence_closes_the_session_with_1000(idle_server):
    async with websockets.connect(f"{idle_server.url}/v1/tts/stream") as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        t0 = time.monotonic()
        await expect_idle_close(ws)
    assert IDLE * 0.9 <= time.monotonic() - t0 < IDLE * 5


async def test_keepalives_keep_the_session_open(idle_server):
    async with websockets.connect(f"{idle_server.url}/v1/tts/stream") as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for _ in range(6):  # 2.4 s of keepalives, well past the timeout; no replies
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.4 * IDLE)
            await send_json(ws, type="keepalive")
        await send_json(ws, type="text", text="Still here.")
        await send_json(ws, type="flush")
        t = Transcript()
        await receive_until(ws, t, "flushed")
        assert t.sentences() == ["Still here."] and "error" not in t.types()
        await expect_idle_close(ws)  # then silence closes it


async def test_msgpack_keepalive(idle_server):
    async with websockets.connect(f"{idle_server.url}/v1/tts/stream?encoding=msgpack") as ws:
        assert msgpack.unpackb(await ws.recv())["type"] == "ready"
        for _ in range(4):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.4 * IDLE)
            await ws.send(msgpack.packb({"type": "keepalive"}))
        await expect_idle_close(ws, msgpack_mode=True)


async def test_audio_still_being_sent_is_not_cut(idle_server):
    """The timer counts only while nothing is left to send: a long reply outlasts it."""
    text = (
        "This reply has a first sentence of some length. And then a second one follows it. "
        "A third sentence keeps the engine busy for a while longer. The fourth one closes it."
    )
    async with websockets.connect(f"{idle_server.url}/v1/tts/stream", max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await send_json(ws, type="text", text=text)
        await send_json(ws, type="flush")
        t = Transcript()
        await receive_until(ws, t, "flushed", timeout=120)
        assert len(t.sentences()) == 4 and "error" not in t.types()
        await expect_idle_close(ws)


def answer_to(server, sent: bytes, wait: float = 10 * REQUEST_TIMEOUT) -> tuple[bytes, float]:
    """What the server answers a client that sends `sent` and then nothing, and how long until it
    closed the connection (the test fails if it holds it for `wait`)."""
    t0 = time.monotonic()
    with socket.create_connection((server.config.server.host, server.config.server.port), timeout=wait) as sock:
        sock.sendall(sent)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    return got, time.monotonic() - t0


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a",
                                  b"GET /v1/tts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"])
def test_a_request_head_that_does_not_come_is_answered_408_and_closed(idle_server, sent):
    """A client that connects and sends nothing, or its headers a few bytes and then nothing, is
    not held: 408 once server.request_timeout_seconds have passed, then the connection closes."""
    got, seconds = answer_to(idle_server, sent)
    assert got.startswith(b"HTTP/1.1 408 ") and b"server.request_timeout_seconds" in got
    assert REQUEST_TIMEOUT * 0.9 <= seconds < REQUEST_TIMEOUT * 5


def test_a_request_body_that_does_not_come_is_answered_408(idle_server):
    head = (b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n")
    got, seconds = answer_to(idle_server, head + b'{"model": ')
    assert got.startswith(b"HTTP/1.1 408 ") and b"request_timeout" in got, got[:300]
    assert REQUEST_TIMEOUT * 0.9 <= seconds < REQUEST_TIMEOUT * 5


def test_a_request_in_time_is_served_and_its_connection_kept(idle_server):
    with socket.create_connection((idle_server.config.server.host, idle_server.config.server.port), timeout=5) as sock:
        for _ in range(2):  # two requests on one connection, the second after the head timeout
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            time.sleep(1.5 * REQUEST_TIMEOUT)


async def wait_closed(ws, code: int = 1000) -> None:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 10 * IDLE)
    assert closed.value.rcvd.code == code


async def test_a_quiet_deepgram_socket_is_closed_unless_kept_alive(idle_server):
    async with websockets.connect(f"{idle_server.url}/v1/speak") as ws:
        assert json.loads(await ws.recv())["type"] == "Metadata"
        for _ in range(4):  # 1.6 s of KeepAlive, past the timeout
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.4 * IDLE)
            await ws.send(json.dumps({"type": "KeepAlive"}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10 * IDLE))
        assert error["type"] == "Error" and error["err_code"] == "idle_timeout" and "KeepAlive" in error["err_msg"]
        await wait_closed(ws)


@pytest.mark.parametrize("path", ["stream-input", "multi-stream-input"])
async def test_a_quiet_elevenlabs_socket_is_closed_unless_kept_alive(idle_server, path):
    url = f"{idle_server.url}/v1/text-to-speech/joe_ar/{path}?output_format=pcm_22050"
    async with websockets.connect(url) as ws:
        for _ in range(4):  # ElevenLabs' own keep-alive: a space
            await ws.send(json.dumps({"text": " "}))
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.4 * IDLE)
        error = json.loads(await asyncio.wait_for(ws.recv(), 10 * IDLE))
        assert error["error"] == "idle_timeout" and error["code"] == 1000
        await wait_closed(ws)
    async with websockets.connect(url) as ws:  # not even the first message
        assert json.loads(await asyncio.wait_for(ws.recv(), 10 * IDLE))["error"] == "idle_timeout"
        await wait_closed(ws)
    assert not idle_server.services.sessions


async def test_a_quiet_wyoming_stream_is_ended_and_the_connection_goes_on(idle_server):
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize, SynthesizeStart

    client = AsyncTcpClient("127.0.0.1", idle_server.config.wyoming.port)
    await client.connect()
    try:
        await client.write_event(SynthesizeStart().event())
        event = await asyncio.wait_for(client.read_event(), 10 * IDLE)
        assert event.type == "error" and event.data["code"] == "idle_timeout"
        assert not idle_server.services.sessions  # its session is gone
        await client.write_event(Synthesize(text="Still here.").event())
        kinds = []
        while not kinds or kinds[-1] != "audio-stop":
            kinds.append((await asyncio.wait_for(client.read_event(), 60)).type)
        assert kinds[0] == "audio-start" and "audio-chunk" in kinds
    finally:
        await client.disconnect()
