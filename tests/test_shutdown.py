"""SIGTERM on a real `stream-server serve` process: running sentences finish, then 1001."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading

import httpx
import pytest
import websockets

from background import free_port
from waiting import wait_until_sync
from wsutil import Transcript, receive_until, send_json

pytestmark = pytest.mark.slow


class ServerOutput:
    """The server's merged stdout/stderr, read line by line as it comes (so a test can wait for a
    log line, and a full pipe never stalls the server)."""

    def __init__(self, stream) -> None:
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, needle: str, timeout: float) -> None:
        """Block until a line containing `needle` was printed; fail if the output ends or
        `timeout` passes first."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: self._ended or any(needle in line for line in self._lines), timeout
            )
            if found and any(needle in line for line in self._lines):
                return
        pytest.fail(f"the server never printed {needle!r} (within {timeout:g} s):\n{self.text()}")

    def close(self, timeout: float) -> str:
        """All of the output, once the process closed it."""
        self._reader.join(timeout)
        return self.text()


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
    output = ServerOutput(proc.stdout)

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode} before it was ready:\n{output.text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until_sync(
            ready, timeout=120, what=lambda: f"/readyz to answer 200; server output:\n{output.text()}"
        )
        yield proc, port, output
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def test_sigterm_finishes_running_sentences_then_closes_1001(served):
    proc, port, output = served
    url = f"ws://127.0.0.1:{port}/v1/tts/stream"
    async with websockets.connect(url, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await send_json(ws, type="text", text="The first sentence is here. And a second one follows it.")
        await send_json(ws, type="flush")
        t = Transcript()
        await receive_until(ws, t, "sentence_start")
        proc.send_signal(signal.SIGTERM)
        # the server logs event=shutdown_start right after it began refusing new sessions
        await asyncio.to_thread(output.wait_for, "event=shutdown_start", 30)
        # Not ready (a load balancer sends new sessions elsewhere), but alive (nothing restarts it).
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
            assert (await http.get("/healthz")).status_code == 200
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
    out = output.close(10)
    assert "event=shutdown_start" in out and "event=shutdown_drained" in out
