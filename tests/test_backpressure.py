"""Backpressure on the real server (docs/limits.md): a client that sends a long text and stops
reading holds a bounded amount of audio, is closed with 4408 after the stall timeout, and its
engine work is dropped; a session beside it streams all its audio meanwhile.

The server of this module has a small `session.max_audio_ahead_seconds` and a short
`session.send_stall_timeout_seconds`; the non-reading client has a small receive buffer and a
`websockets` client that stops reading from its socket once a few frames are queued unread."""

from __future__ import annotations

import asyncio
import json
import socket
from urllib.parse import urlparse

import httpx
import pytest
import websockets

from background import BackgroundServer, free_port
from stream_server.config import AppConfig
from stream_server.server.send_stall import STALL_CLOSE_CODE, STALL_REASON
from waiting import wait_until
from wsutil import Transcript, receive_until, send_json

pytestmark = pytest.mark.slow

AHEAD = 4.0  # seconds of audio a session may run ahead of its client
STALL = 2.0  # seconds a send may make no progress
SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank. "
FORMAT = "format=pcm_f32le&sample_rate=48000"  # 192 KB a second: the socket's buffers fill soon
SEND_BUFFER = 32 << 10  # the server's sockets' SO_SNDBUF: a few hundred ms of that audio


@pytest.fixture(scope="module")
def bp_server():
    config = AppConfig()
    config.server.port = free_port()
    config.wyoming.enabled = False
    config.engine.warmup = False
    config.cache.enabled = False  # every sentence is synthesized: the engine's work is what is watched
    config.session.max_audio_ahead_seconds = AHEAD
    config.session.send_stall_timeout_seconds = STALL
    with BackgroundServer(config, send_buffer=SEND_BUFFER) as running:
        yield running


def small_buffer_socket(url: str) -> socket.socket:
    """A connected client socket that takes in little before the server's sends wait."""
    parsed = urlparse(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # set before connect: no autotuning
    sock.connect((parsed.hostname, parsed.port))
    sock.setblocking(False)
    return sock


def engine_idle(services) -> bool:
    stats = services.engine.stats
    return sum(stats.active_slots.values()) == 0 and stats.waiting == 0 and services.client.in_flight() == 0


async def read_to_close(ws) -> websockets.ConnectionClosed:
    """Read everything left, up to the close (which must come)."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 30)
    return closed.value


async def test_a_client_that_stops_reading_is_bounded_closed_with_4408_and_its_work_dropped(bp_server):
    services = bp_server.services
    url = f"{bp_server.url}/v1/tts/stream?{FORMAT}"
    stalls_before = services.metrics.send_stalls.labels("native")._value.get()
    # max_queue: the client library stops reading the socket with this many frames unread
    stalled = await websockets.connect(url, sock=small_buffer_socket(url), max_size=None, max_queue=1)
    assert json.loads(await stalled.recv())["type"] == "ready"
    (session,) = services.sessions.values()
    await send_json(stalled, type="text", text=SENTENCE * 40)  # ~160 s of audio, never read
    await send_json(stalled, type="flush")

    peak = 0.0

    def stalled_and_peak() -> bool:
        nonlocal peak
        peak = max(peak, session.ahead.held)
        return session.stalled.is_set()

    async def stall_then_read() -> websockets.ConnectionClosed:
        await wait_until(stalled_and_peak, timeout=120, interval=0.005, what="the send stall")
        # reading again at once: the audio it had, then the close (which waits only
        # CLOSE_GRACE_SECONDS behind unread audio, however busy the reader below keeps the machine)
        return await read_to_close(stalled)

    closing = asyncio.create_task(stall_then_read())
    # A reading client at the same time: all its audio comes while the other one is stuck.
    async with websockets.connect(url, max_size=None) as reader:
        assert json.loads(await reader.recv())["type"] == "ready"
        await wait_until(lambda: session.ahead.held > 0 or session.stalled.is_set(), timeout=60,
                         what="audio held for the client that does not read")
        await send_json(reader, type="text", text=SENTENCE * 4)
        await send_json(reader, type="flush")
        t = Transcript()
        await receive_until(reader, t, "flushed", timeout=120)
        assert len(t.sentences()) == 4 and "error" not in t.types()
        assert all(len(t.audio[key]) > 4 * 48000 for key in t.order)  # over a second each
        longest = max(len(t.audio[key]) for key in t.order) / 4 / 48000  # seconds of one sentence

    closed = await closing
    # the audio held for it never went past the bound by more than the sentence that crossed it
    assert 0 < peak <= AHEAD + longest + 0.1, (peak, longest)
    assert session.ahead.ahead() == pytest.approx(0)  # dropped with the stall
    assert services.metrics.send_stalls.labels("native")._value.get() == stalls_before + 1

    assert closed.rcvd is not None and closed.rcvd.code == STALL_CLOSE_CODE and closed.rcvd.reason == STALL_REASON
    await wait_until(lambda: not services.sessions and engine_idle(services), timeout=30,
                     what="the stalled session gone and the engine idle")


async def test_metrics_show_the_audio_held_and_the_stalls(bp_server):
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{bp_server.http}/metrics")).text
    assert "tts_audio_held_seconds " in text and "tts_audio_held_max_seconds " in text
    assert 'tts_send_stalls_total{protocol="native"}' in text


LONG = SENTENCE * 40
# Every WebSocket protocol: its URL and the messages that ask for LONG's audio.
WS_PROTOCOLS = {
    "deepgram": ("/v1/speak?encoding=linear16&sample_rate=48000",
                 [{"type": "Speak", "text": LONG}, {"type": "Flush"}]),
    "elevenlabs": ("/v1/text-to-speech/joe_ar/stream-input?output_format=pcm_48000",
                   [{"text": LONG, "flush": True}]),
    "elevenlabs_multi": ("/v1/text-to-speech/joe_ar/multi-stream-input?output_format=pcm_48000",
                         [{"text": LONG, "context_id": "a", "flush": True}]),
}


async def stall_counted(services, protocol: str, before: float) -> None:
    counter = services.metrics.send_stalls.labels(protocol)
    await wait_until(lambda: counter._value.get() == before + 1, timeout=120, what=f"a {protocol} send stall")


@pytest.mark.parametrize("protocol", sorted(WS_PROTOCOLS))
async def test_every_websocket_protocol_closes_a_stalled_client_with_4408(bp_server, protocol):
    """Deepgram, ElevenLabs stream-input (its sends are a task of their own) and multi-stream-input
    (the native protocol has its own test above)."""
    services = bp_server.services
    path, messages = WS_PROTOCOLS[protocol]
    url = f"{bp_server.url}{path}"
    before = services.metrics.send_stalls.labels(protocol)._value.get()
    ws = await websockets.connect(url, sock=small_buffer_socket(url), max_size=None, max_queue=1)
    for message in messages:
        await ws.send(json.dumps(message))
    await stall_counted(services, protocol, before)
    closed = await read_to_close(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (STALL_CLOSE_CODE, STALL_REASON)
    await wait_until(lambda: not services.sessions and engine_idle(services), timeout=30,
                     what="the stalled session gone and the engine idle")


async def test_a_streamed_openai_response_not_read_is_cut_and_its_session_ended(bp_server):
    services = bp_server.services
    before = services.metrics.send_stalls.labels("openai")._value.get()
    body = json.dumps({"model": "tts-1", "input": SENTENCE * 55, "voice": "alloy", "response_format": "pcm"})
    request = (
        f"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    sock = small_buffer_socket(bp_server.url)
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(request)
    await writer.drain()
    await wait_until(lambda: services.sessions, timeout=30, what="the request's session")
    await stall_counted(services, "openai", before)
    await wait_until(lambda: not services.sessions and engine_idle(services), timeout=30,
                     what="the stalled session gone and the engine idle")
    received = 0
    while chunk := await asyncio.wait_for(reader.read(1 << 16), 30):  # what was sent, then the end
        received += len(chunk)
    assert received < 55 * 4 * 24000 * 2  # cut: far less than the whole answer
    writer.close()
