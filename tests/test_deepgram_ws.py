"""The Deepgram-compatible /v1/speak WebSocket on the wire, with `websockets`: Metadata on open, audio
per sentence while text streams, Flushed / Cleared with sequence ids, Clear stops the audio at once,
models map to voices, bad handshakes are refused with HTTP 400 and a dg-error header, bad messages
get an Error and close 1008."""

from __future__ import annotations

import json

import numpy as np
import pytest
import websockets

from stream_server.audio.formats import resample

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767
AUTH = {"Authorization": "Token unused"}


def url(server, query: str = "model=aura-2-thalia-en&encoding=linear16&sample_rate=22050") -> str:
    return f"{server.url}/v1/speak?{query}"


def speak(text: str) -> str:
    return json.dumps({"type": "Speak", "text": text})


async def until(ws, kind: str) -> tuple[bytes, list[dict]]:
    """Audio and messages received up to and including the first message of type `kind`."""
    audio, messages = bytearray(), []
    while True:
        frame = await ws.recv()
        if isinstance(frame, bytes):
            audio += frame
            continue
        messages.append(json.loads(frame))
        if messages[-1]["type"] == kind:
            return bytes(audio), messages


def pcm(audio: bytes) -> np.ndarray:
    return np.frombuffer(audio, "<i2").astype(np.float32) / 32767


async def test_streams_sentences_flushes_and_clears(server, offline):
    async with websockets.connect(url(server), additional_headers=AUTH, max_size=None) as ws:
        meta = json.loads(await ws.recv())
        assert meta["type"] == "Metadata" and meta["model_name"] == "aura-2-thalia-en"
        assert meta["model_uuid"] == server.config.default_voice and meta["request_id"]
        await ws.send(speak("Streaming from an LLM. Tok"))
        first = await ws.recv()  # the first sentence is spoken while the text is still coming
        assert isinstance(first, bytes) and first
        await ws.send(speak("en by token! "))
        await ws.send(json.dumps({"type": "Flush"}))
        audio, messages = await until(ws, "Flushed")
        assert messages == [{"type": "Flushed", "sequence_id": 0}]
        want = np.concatenate([offline("Streaming from an LLM."), offline("Token by token!")])
        got = pcm(first + audio)
        assert len(got) == len(want) and np.max(np.abs(got - want)) <= TOL

        # Clear while a sentence is being spoken: nothing of it after Cleared, and the Flushed of the
        # cleared text is not sent (Pipecat would end its next reply on it).
        await ws.send(speak("This sentence is cleared while it is spoken. So is this one. "))
        await ws.send(json.dumps({"type": "Flush"}))
        assert isinstance(await ws.recv(), bytes)
        await ws.send(json.dumps({"type": "Clear"}))
        _, messages = await until(ws, "Cleared")
        assert messages == [{"type": "Cleared", "sequence_id": 1}]
        await ws.send(speak("After the clear."))
        await ws.send(json.dumps({"type": "Flush"}))
        audio, messages = await until(ws, "Flushed")
        assert messages == [{"type": "Flushed", "sequence_id": 1}]
        got, want = pcm(audio), offline("After the clear.")
        assert len(got) == len(want) and np.max(np.abs(got - want)) <= TOL

        await ws.send(json.dumps({"type": "Close"}))
        with pytest.raises(websockets.ConnectionClosedOK):
            await ws.recv()
        assert ws.close_code == 1000


async def test_encodings_rates_and_models(server, offline):
    async with websockets.connect(url(server, "model=aura-asteria-en&encoding=mulaw"), max_size=None) as ws:
        assert json.loads(await ws.recv())["model_uuid"] == server.config.default_voice
        await ws.send(speak("Telephone audio."))
        await ws.send(json.dumps({"type": "Flush"}))
        ulaw, _ = await until(ws, "Flushed")
    assert abs(len(ulaw) - len(resample(offline("Telephone audio."), 22050, 8000))) <= 1
    async with websockets.connect(url(server, "model=joe"), max_size=None) as ws:  # default: 24 kHz
        assert json.loads(await ws.recv())["model_uuid"] == "joe"
        await ws.send(speak("Our own voice names work too."))
        await ws.send(json.dumps({"type": "Flush"}))
        audio, _ = await until(ws, "Flushed")
    assert len(audio) > 2 * 24000  # over a second of 24 kHz s16le


@pytest.mark.parametrize("query, code", [
    ("encoding=alaw", "unsupported_encoding"),
    ("encoding=mp3", "unsupported_encoding"),
    ("sample_rate=11025", "unsupported_sample_rate"),
    ("sample_rate=fast", "unsupported_sample_rate"),
    ("encoding=mulaw&sample_rate=16000", "unsupported_format"),
    ("speed=3", "unsupported_speed"),
])
async def test_a_bad_handshake_is_refused_with_a_reason(server, query, code):
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url(server, query)):
            pass
    response = refused.value.response
    assert response.status_code == 400
    assert json.loads(response.body)["err_code"] == code
    assert response.headers["dg-error"] == json.loads(response.body)["err_msg"]


@pytest.mark.parametrize("frame, code", [
    ("{not json", "invalid_json"),
    (json.dumps({"type": "Speek", "text": "Hi."}), "unknown_type"),
    (json.dumps({"type": "Speak", "text": 42}), "invalid_message"),
    (json.dumps(["Speak"]), "invalid_message"),
    (speak("x" * 2001), "text_too_long"),
])
async def test_a_bad_message_is_an_error_then_close_1008(server, frame, code):
    async with websockets.connect(url(server)) as ws:
        assert json.loads(await ws.recv())["type"] == "Metadata"
        await ws.send(frame)
        error = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await ws.recv()
    assert error["type"] == "Error" and error["err_code"] == code and error["err_msg"]
    assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason.startswith(code)
