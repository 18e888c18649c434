"""The limits on what clients control, on the wire of the real server (docs/limits.md): WebSocket
message size, the session's backlog, and contexts over a socket's life."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from wsutil import Transcript, receive_until, send_json

pytestmark = pytest.mark.slow


def only_session(server):
    (session,) = server.services.sessions.values()
    return session


async def test_a_message_over_ws_max_size_is_closed_with_1009(server):
    limit = server.config.server.ws_max_size_bytes
    assert limit == 1 << 20
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await send_json(ws, type="text", text="Fits. " * (limit // 100))  # well under: fine
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await send_json(ws, type="text", text="x" * limit)
            while True:
                await ws.recv()
    assert closed.value.rcvd.code == 1009  # message too big


async def test_text_past_the_backlog_is_refused_until_the_client_reads_or_cancels(server):
    """A client that sends text far faster than it can be spoken: past session.max_pending_chars
    its text is refused with a clear error; a cancel makes room; the session goes on."""
    limit = server.config.session.max_pending_chars
    piece = "word " * 400  # 2,000 characters: session.max_text_chars of the tests' server
    t = Transcript()
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for _ in range(limit // len(piece) + 2):
            await send_json(ws, type="text", text=piece, context_id="flood")
        await send_json(ws, type="cancel", context_id="flood")
        await receive_until(ws, t, "cancelled", timeout=60)
        errors = [m for m in t.messages if m["type"] == "error"]
        assert errors and {e["code"] for e in errors} == {"too_much_pending"}
        assert "session.max_pending_chars" in errors[0]["message"]
        await send_json(ws, type="text", text="Still here.", context_id="after")
        await send_json(ws, type="flush", context_id="after")
        await receive_until(ws, t, "flushed", timeout=60)
    assert t.sentences("after") == ["Still here."]


async def test_contexts_used_over_a_multi_stream_socket_are_not_all_kept(server):
    """500 ElevenLabs contexts opened and closed in turn on one socket: the session keeps at most
    2 x max_contexts + 1 of them, and the socket still speaks."""
    url = f"{server.url}/v1/text-to-speech/joe_ar/multi-stream-input?output_format=pcm_22050"
    bound = 2 * server.config.session.max_contexts + 1
    async with websockets.connect(url, max_size=None) as ws:
        for i in range(500):
            ctx = f"turn-{i}"
            await ws.send(json.dumps({"text": " ", "context_id": ctx, "voice_settings": {"speed": 1.0}}))
            await ws.send(json.dumps({"context_id": ctx, "flush": True}))
            await ws.send(json.dumps({"context_id": ctx, "close_context": True}))
            final = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert final == {"isFinal": True, "contextId": ctx}
            assert only_session(server).known_contexts() <= bound
        await ws.send(json.dumps({"text": "Still speaking.", "context_id": "last", "flush": True}))
        got = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert got["contextId"] == "last" and got["audio"]


async def test_a_multi_stream_context_past_the_backlog_fails_alone(server):
    """ElevenLabs multi-stream-input: text past the backlog is that context's error (with its
    contextId); the socket stays open, a barge-in ends the context, and the socket speaks on."""
    url = f"{server.url}/v1/text-to-speech/joe_ar/multi-stream-input?output_format=pcm_22050"
    limit = server.config.session.max_pending_chars
    piece = "word " * 400
    async with websockets.connect(url, max_size=None) as ws:
        for _ in range(limit // len(piece) + 2):
            await ws.send(json.dumps({"text": piece, "context_id": "flood"}))
        await ws.send(json.dumps({"context_id": "flood", "close_context": True}))  # no flush: cancelled
        got = []
        while not (got and got[-1].get("isFinal") and got[-1].get("contextId") == "flood"):
            got.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
        errors = [m for m in got if "error" in m]
        assert errors and all(e["error"] == "too_much_pending" and e["contextId"] == "flood" for e in errors)
        await ws.send(json.dumps({"text": "Still speaking.", "context_id": "next", "flush": True}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert reply["contextId"] == "next" and reply["audio"]


BAD_TEXT = "Hello \udcff there."  # JSON carries it escaped ("\udcff"): valid JSON, not valid Unicode


async def test_text_that_is_not_valid_unicode_is_answered_invalid_text_on_every_protocol(server, caplog):
    """An unpaired surrogate, escaped in valid JSON, is a client error (invalid_text) on every
    protocol: never a crashed handler or an HTTP 500; the native session goes on and speaks."""
    import logging

    import httpx

    caplog.set_level(logging.ERROR)
    t = Transcript()
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await send_json(ws, type="text", text=BAD_TEXT)
        await send_json(ws, type="text", text="Still here.", context_id="after")
        await send_json(ws, type="flush", context_id="after")
        await receive_until(ws, t, "flushed", timeout=60)
    assert [m["code"] for m in t.messages if m["type"] == "error"] == ["invalid_text"]
    assert t.sentences("after") == ["Still here."] and t.sentences() == []

    body = {"model": "tts-1", "input": BAD_TEXT, "voice": "alloy", "response_format": "pcm"}
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{server.http}/v1/audio/speech", content=json.dumps(body),  # escaped
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_text", r.text

    async with websockets.connect(f"{server.url}/v1/speak?encoding=linear16") as ws:
        assert json.loads(await ws.recv())["type"] == "Metadata"
        await ws.send(json.dumps({"type": "Speak", "text": BAD_TEXT}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["err_code"] == "invalid_text"

    for path, first in (("stream-input", {"text": " "}), ("multi-stream-input", None)):
        url = f"{server.url}/v1/text-to-speech/joe_ar/{path}?output_format=pcm_22050"
        async with websockets.connect(url) as ws:
            if first is not None:
                await ws.send(json.dumps(first))
            await ws.send(json.dumps({"text": BAD_TEXT, "context_id": "c"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["error"] == "invalid_text"
    assert not caplog.records, [r.getMessage() for r in caplog.records]
