"""The native protocol's richer features over the real WebSocket (session-scoped `server`):
mu-law 8 kHz output, the open-context limit and word timestamps (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json
import string
import warnings

import numpy as np
import pytest
import websockets

from stream_server.audio.formats import resample
from wsutil import Transcript, receive_until, send_json

pytestmark = pytest.mark.slow

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


async def connect(server, query: str = ""):
    ws = await websockets.connect(f"{server.url}/v1/tts/stream{query}", max_size=None)
    ready = json.loads(await ws.recv())
    return ws, ready


def ulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes -> float32 in [-1, 1] (the test's own decoder, checked against audioop)."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    pcm16 = np.where(u & 0x80, 0x84 - t, t - 0x84)
    assert pcm16.astype("<i2").tobytes() == audioop.ulaw2lin(data, 2)
    return pcm16.astype(np.float32) / 32768.0


# --- (a) mu-law 8 kHz ----------------------------------------------------------------------------
async def test_ulaw_8k_decodes_close_to_offline_synthesis(server, offline):
    sentence = "Please hold while we connect your call."
    ws, ready = await connect(server, "?format=ulaw&sample_rate=8000")
    async with ws:
        assert ready["format"] == "ulaw" and ready["sample_rate"] == 8000
        await send_json(ws, type="text", text=sentence)
        await send_json(ws, type="flush")
        t = Transcript()
        await receive_until(ws, t, "flushed")
    (key,) = t.order
    data = bytes(t.audio[key])
    end = next(m for m in t.messages if m["type"] == "sentence_end")
    assert end["samples"] == len(data)  # one byte per sample
    got = ulaw_decode(data)
    want = resample(offline(sentence), 22050, 8000)
    assert abs(len(got) - len(want)) <= 1
    n = min(len(got), len(want))
    err = got[:n] - want[:n]
    assert np.abs(err).max() <= 0.04  # mu-law steps are <= 1/32 of full scale
    snr = 10 * np.log10(np.sum(want[:n] ** 2) / np.sum(err**2))
    assert snr > 25, snr


async def test_ulaw_needs_8000_hz(server):
    before = set(server.services.sessions)
    async with websockets.connect(f"{server.url}/v1/tts/stream?format=ulaw&sample_rate=16000") as ws:
        err = json.loads(await ws.recv())
        assert err["type"] == "error" and err["code"] == "unsupported_format"
        assert "8000" in err["message"] and "ulaw" in err["message"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1008
    assert set(server.services.sessions) <= before  # a refused session leaves nothing behind
    ws, _ = await connect(server)  # default 22050 Hz: a config to ulaw alone is refused too
    async with ws:
        await send_json(ws, type="config", format="ulaw")
        err = json.loads(await ws.recv())
        assert err["code"] == "unsupported_format" and "8000" in err["message"]
        await send_json(ws, type="config", format="ulaw", sample_rate=8000)
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready" and ready["format"] == "ulaw" and ready["sample_rate"] == 8000


# --- (b) open contexts per socket ---------------------------------------------------------------
async def test_open_context_limit(server):
    limit = server.config.session.max_contexts
    assert limit == 8
    ws, _ = await connect(server)
    t = Transcript()
    async with ws:
        for i in range(limit):  # text without a sentence end: each context stays open
            await send_json(ws, type="text", text="Words waiting", context_id=f"c{i}")
        await send_json(ws, type="text", text="One too many", context_id="extra")
        err = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert err["type"] == "error" and err["code"] == "too_many_contexts"
        assert str(limit) in err["message"]
        await send_json(ws, type="text", text=" still", context_id="c3")  # an open one: fine
        await send_json(ws, type="cancel", context_id="c0")  # a cancelled context is closed
        await receive_until(ws, t, "cancelled")
        await send_json(ws, type="text", text="Now it fits", context_id="extra")
        await send_json(ws, type="text", text="Again too many", context_id="extra2")
        await receive_until(ws, t, "error")
        assert t.messages[-1]["code"] == "too_many_contexts"
        await send_json(ws, type="flush", context_id="c1")  # flushed and sent: closed
        await receive_until(ws, t, "flushed")
        await send_json(ws, type="text", text="Fits after the flush", context_id="extra2")
        for ctx in ["c2", "c3", "c4", "c5", "c6", "c7", "extra", "extra2"]:
            await send_json(ws, type="cancel", context_id=ctx)
        while not (t.messages[-1]["type"] == "cancelled" and t.messages[-1]["context_id"] == "extra2"):
            await receive_until(ws, t, "cancelled")
    errors = [m for m in t.messages if m["type"] == "error"]
    assert len(errors) == 1, errors  # only "extra2" before the flush (the first one read above)
    assert t.sentences("c1") == ["Words waiting"]


# --- (d) word timestamps ---------------------------------------------------------------------------
def words_of(text: str) -> list[str]:
    stripped = (w.strip(string.punctuation) for w in text.split())
    return [w for w in stripped if w]


def check_order(t: Transcript) -> dict[tuple[str, int], list[dict]]:
    """Each sentence's `words` comes after its sentence_start and before its first audio."""
    out, state = {}, None
    for m in t.messages:
        key = (m.get("context_id"), m.get("index"))
        if m["type"] == "sentence_start":
            state = "started"
        elif m["type"] == "words":
            assert state == "started", "words outside sentence_start..first audio"
            out[key] = m["words"]
            state = "worded"
        elif m["type"] == "audio":
            assert key in out, "audio before the sentence's words"
            state = "audio"
    return out


async def speak(server, text: str, context_id: str = "w") -> Transcript:
    ws, _ = await connect(server)
    t = Transcript()
    async with ws:
        await send_json(ws, type="text", text=text, context_id=context_id)
        await send_json(ws, type="flush", context_id=context_id)
        await receive_until(ws, t, "flushed", timeout=120)
    return t


async def test_word_timestamps_per_sentence_and_cached_replay(server):
    text = "Hello there, Doctor Watson! I counted 42 owls near the barn today."
    t = await speak(server, text)
    sentences = t.sentences("w")
    assert sentences == ["Hello there, Doctor Watson!", "I counted 42 owls near the barn today."]
    words = check_order(t)
    ends = [m for m in t.messages if m["type"] == "sentence_end"]
    rate = 22050
    offset = 0.0
    for sentence, end in zip(sentences, ends):
        got = words[("w", end["index"])]
        assert [w["word"] for w in got] == words_of(sentence)
        duration = end["samples"] / rate
        previous_end = offset
        for w in got:
            assert previous_end - 1e-3 <= w["start"] < w["end"], got
            previous_end = w["end"]
        assert got[0]["start"] >= offset and got[-1]["end"] <= offset + duration + 1e-3, (offset, got)
        offset += duration
    # the first sentence maps one spoken word group per word: its words cover the speech,
    # not the silence around it
    first = words[("w", 0)]
    assert first[0]["start"] > 0 and first[-1]["end"] < ends[0]["samples"] / rate
    # a cached replay carries the same words
    again = await speak(server, text)
    assert all(m["cached"] for m in again.messages if m["type"] == "sentence_end")
    assert check_order(again) == words


async def test_words_in_msgpack_and_at_another_rate(server):
    import msgpack

    sentence = "Timing survives resampling."
    ws = await websockets.connect(f"{server.url}/v1/tts/stream?encoding=msgpack&sample_rate=16000")
    async with ws:
        msgpack.unpackb(await ws.recv())
        await ws.send(msgpack.packb({"type": "text", "text": sentence}))
        await ws.send(msgpack.packb({"type": "flush"}))
        t = Transcript()
        await receive_until(ws, t, "flushed", msgpack_mode=True)
    words = check_order(t)[("default", 0)]
    end = next(m for m in t.messages if m["type"] == "sentence_end")
    assert [w["word"] for w in words] == words_of(sentence)
    assert 0 <= words[0]["start"] and words[-1]["end"] <= end["samples"] / 16000 + 1e-3
