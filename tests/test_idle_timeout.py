"""Keepalive and the idle timeout of the native protocol, on a server of its own with a short
`session.idle_timeout_seconds` (module-scoped: started once for these tests)."""

from __future__ import annotations

import asyncio
import json
import time

import msgpack
import pytest
import websockets

from background import BackgroundServer, free_port
from stream_server.config import AppConfig
from wsutil import Transcript, receive_until, send_json

pytestmark = pytest.mark.slow

IDLE = 1.0


@pytest.fixture(scope="module")
def idle_server():
    config = AppConfig()
    config.server.port = free_port()
    config.wyoming.enabled = False
    config.engine.warmup = False
    config.cache.enabled = False
    config.session.idle_timeout_seconds = IDLE
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
