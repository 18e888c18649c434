"""The native WebSocket protocol against a real uvicorn server and the real voice."""

from __future__ import annotations

import asyncio
import json

import msgpack
import numpy as np
import pytest
import websockets

from stream_server.audio.formats import resample
from waiting import wait_until
from wsutil import Transcript, max_diff, receive_until, send_json

pytestmark = pytest.mark.slow

# Streamed s16 audio vs the offline float decode: chunk joins (<=1e-3) plus s16 rounding.
TOL = 1e-3 + 1.0 / 32767


async def connect(server, query: str = ""):
    ws = await websockets.connect(f"{server.url}/v1/tts/stream{query}", max_size=None)
    ready = json.loads(await ws.recv())
    return ws, ready


async def test_ready_on_connect(server):
    ws, ready = await connect(server)
    async with ws:
        assert ready["type"] == "ready"
        assert ready["voice"] == "joe_ar" and ready["sample_rate"] == 22050  # the AR voice by default
        assert ready["format"] == "pcm_s16le" and len(ready["session_id"]) >= 8


async def test_token_stream_gives_ordered_sentences_equal_to_offline(server, offline):
    ws, _ = await connect(server)
    t = Transcript()
    async with ws:
        for piece in ["Hel", "lo there", ", Dr", ". Smith", "! How", " are you", " today?", " Fine."]:
            await send_json(ws, type="text", text=piece)
        await send_json(ws, type="flush")
        await receive_until(ws, t, "flushed")
    assert t.sentences() == ["Hello there, Dr. Smith!", "How are you today?", "Fine."]
    ends = [m for m in t.messages if m["type"] == "sentence_end"]
    assert [m["index"] for m in ends] == [0, 1, 2] and not any(m["cached"] for m in ends)
    for key, end in zip(t.order, ends):
        got = t.pcm16(key)
        assert end["samples"] == len(got)
        assert max_diff(got, offline(t.sentences()[key[1]])) <= TOL


async def test_msgpack_encoding_and_f32_at_16k(server, offline):
    ws = await websockets.connect(
        f"{server.url}/v1/tts/stream?encoding=msgpack&format=pcm_f32le&sample_rate=16000"
    )
    async with ws:
        ready = msgpack.unpackb(await ws.recv())
        assert ready["type"] == "ready" and ready["sample_rate"] == 16000
        assert ready["format"] == "pcm_f32le"
        await ws.send(msgpack.packb({"type": "text", "text": "Testing the binary encoding."}))
        await ws.send(msgpack.packb({"type": "flush"}))
        t = Transcript()
        await receive_until(ws, t, "flushed", msgpack_mode=True)
    (key,) = t.order
    got = np.frombuffer(bytes(t.audio[key]), dtype="<f4")
    want = resample(offline("Testing the binary encoding."), 22050, 16000)
    assert abs(len(got) - len(want)) <= 1
    n = min(len(got), len(want))
    assert max_diff(got[:n], want[:n]) <= 2e-3


@pytest.mark.parametrize(
    "frame, code",
    [
        ("{not json", "invalid_json"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps(["text"]), "invalid_message"),
        (json.dumps({"type": "text"}), "invalid_message"),
        (json.dumps({"type": "text", "text": "x" * 2001}), "text_too_long"),
        (b"\x00\x01binary", "binary_not_supported"),
        (json.dumps({"type": "config", "voice": "nobody"}), "unknown_voice"),
        (json.dumps({"type": "config", "sample_rate": 12345}), "unsupported_sample_rate"),
        (json.dumps({"type": "config", "format": "mp3"}), "unsupported_format"),
        (json.dumps({"type": "config", "voice": "v" * 100_000}), "unknown_voice"),
        (json.dumps({"type": "text", "text": "Hi.", "context_id": "c" * 257}), "context_id_too_long"),
        (json.dumps({"type": "flush", "context_id": "c" * 100_000}), "context_id_too_long"),
        (json.dumps({"type": "cancel", "context_id": "c" * 100_000}), "context_id_too_long"),
    ],
)
async def test_bad_input_gets_error_and_session_keeps_working(server, frame, code, offline):
    ws, _ = await connect(server)
    async with ws:
        await ws.send(frame)
        err = json.loads(await ws.recv())
        assert err["type"] == "error" and err["code"] == code and err["message"]
        assert len(err["message"]) < 400 and "c" * 300 not in err.get("context_id", "")  # nothing echoed long
        await send_json(ws, type="text", text="Still working.")
        await send_json(ws, type="flush")
        t = Transcript()
        await receive_until(ws, t, "flushed")
    assert t.sentences() == ["Still working."]
    assert max_diff(t.pcm16(t.order[0]), offline("Still working.")) <= TOL


async def test_bad_query_parameter_is_refused_with_error(server):
    async with websockets.connect(f"{server.url}/v1/tts/stream?voice=ghost") as ws:
        err = json.loads(await ws.recv())
        assert err["type"] == "error" and err["code"] == "unknown_voice"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1008


async def test_config_before_text_answers_ready_and_after_text_is_refused(server):
    ws, _ = await connect(server)
    async with ws:
        await send_json(ws, type="config", sample_rate=24000, format="pcm_f32le")
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready" and ready["sample_rate"] == 24000
        await send_json(ws, type="text", text="Some words")
        await send_json(ws, type="config", sample_rate=8000)
        err = json.loads(await ws.recv())
        assert err["code"] == "config_after_text"


async def test_cancel_stops_context_audio_and_other_context_continues(server, offline):
    ws, _ = await connect(server)
    long_text = " ".join(f"This is sentence number {w} of a long story." for w in
                         ["one", "two", "three", "four", "five", "six", "seven", "eight"])
    async with ws:
        await send_json(ws, type="text", text=long_text, context_id="a")
        await send_json(ws, type="flush", context_id="a")
        t = Transcript()
        # wait for the first audio of context a, then barge in
        while True:
            raw = await ws.recv()
            if isinstance(raw, bytes):
                break
            t.add(json.loads(raw))
        await send_json(ws, type="cancel", context_id="a")
        after_cancel = []
        while True:
            raw = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(raw, str) and json.loads(raw)["type"] == "cancelled":
                break
        await send_json(ws, type="text", text="A new reply.", context_id="b")
        await send_json(ws, type="flush", context_id="b")
        while True:
            raw = await asyncio.wait_for(ws.recv(), 60)
            after_cancel.append(raw)
            if isinstance(raw, str) and json.loads(raw)["type"] == "flushed" and json.loads(raw)["context_id"] == "b":
                break
    texts = [json.loads(r) for r in after_cancel if isinstance(r, str)]
    assert all(m.get("context_id") != "a" or m["type"] == "flushed" for m in texts), texts
    starts = [m for m in texts if m["type"] == "sentence_start"]
    assert [m["text"] for m in starts] == ["A new reply."]
    audio = b"".join(r for r in after_cancel if isinstance(r, bytes))
    got = np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32767
    assert max_diff(got, offline("A new reply.")) <= TOL


async def test_end_flushes_everything_then_done_and_close_1000(server):
    ws, _ = await connect(server)
    t = Transcript()
    await send_json(ws, type="text", text="No final punctuation here", context_id="x")
    await send_json(ws, type="end")
    await receive_until(ws, t, "done")
    with pytest.raises(websockets.ConnectionClosedOK) as closed:
        await ws.recv()
    assert closed.value.rcvd.code == 1000
    assert t.sentences("x") == ["No final punctuation here"]


async def test_disconnect_mid_sentence_frees_engine_slots(server):
    ws, _ = await connect(server)
    await send_json(ws, type="text", text="Words to drop. " * 6)
    await send_json(ws, type="flush")
    await ws.recv()  # something started
    await ws.close()
    services = server.services
    stats = services.engine.stats  # published by the engine thread after every step

    def freed() -> bool:
        return not services.sessions and sum(stats.active_slots.values()) == 0 and stats.waiting == 0

    await wait_until(freed, timeout=10, what="the engine to free the closed session's slots")
    assert services.client.in_flight() == 0  # no sentence of it is routed any more


async def test_health_ready_and_metrics_show_engine_numbers(server):
    import httpx

    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json() == {"status": "ready"}
        listed = (await http.get("/v1/voices")).json()["voices"]
        joe = {"language": "en_US", "espeak_voice": "en-us", "sample_rate": 22050, "speakers": []}
        native = ["name", "kind", "default", *joe]  # and ElevenLabs' fields (test_elevenlabs_http.py)
        voices = [{k: v[k] for k in native} for v in listed]
        assert all(v["voice_id"] == v["name"] for v in listed)
        assert {"name": "joe_ar", "kind": "ar", "default": True, **joe} in voices
        assert {"name": "joe", "kind": "piper_vits", "default": False, **joe} in voices  # the teacher
        ws, _ = await connect(server)
        async with ws:
            await send_json(ws, type="text", text="Counting for the metrics.")
            await send_json(ws, type="flush")
            await ws.send("{broken")
            await receive_until(ws, Transcript(), "flushed")
            text = (await http.get("/metrics")).text
    assert "tts_active_sessions" in text
    assert 'tts_errors_total{code="invalid_json"}' in text
    # queue and slot gauges come from the engine thread (the loop never reads engine state)
    assert 'tts_engine_active_slots{voice="joe_ar"}' in text
    for name in ("tts_engine_step_seconds_count", "tts_first_audio_seconds_count",
                 "tts_vocoder_batch_size_count", "tts_engine_real_time_factor", "tts_queued_sentences"):
        line = next(ln for ln in text.splitlines() if ln.startswith(name))
        assert float(line.split()[-1]) > 0 or name == "tts_queued_sentences", line
