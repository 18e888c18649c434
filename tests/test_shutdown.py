"""SIGTERM on a real `stream-server serve` process: running sentences finish, then 1001."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import httpx
import pytest
import websockets

from background import free_port
from wsutil import Transcript, receive_until, send_json

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path):
    port = free_port()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "server:\n  shutdown_grace_seconds: 30\nengine:\n  warmup: false\nwyoming:\n  enabled: false\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream_server.cli", "serve", "--port", str(port), "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"server did not start:\n{proc.stdout.read()}")
        time.sleep(0.2)
    yield proc, port
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


async def test_sigterm_finishes_running_sentences_then_closes_1001(served):
    proc, port = served
    url = f"ws://127.0.0.1:{port}/v1/tts/stream"
    async with websockets.connect(url, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await send_json(ws, type="text", text="The first sentence is here. And a second one follows it.")
        await send_json(ws, type="flush")
        t = Transcript()
        await receive_until(ws, t, "sentence_start")
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        # New sessions are refused while draining.
        async with websockets.connect(url) as late:
            err = json.loads(await late.recv())
            assert err["code"] == "shutting_down"
            with pytest.raises(websockets.ConnectionClosed) as refused:
                await late.recv()
            assert refused.value.rcvd.code == 1001
        # The running session gets all its audio, then a 1001 close.
        await receive_until(ws, t, "flushed")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd.code == 1001
    assert t.sentences() == ["The first sentence is here.", "And a second one follows it."]
    assert [m["type"] for m in t.messages].count("sentence_end") == 2
    proc.wait(30)
    out = proc.stdout.read()
    assert "event=shutdown_start" in out and "event=shutdown_drained" in out
