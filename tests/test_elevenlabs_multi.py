"""The ElevenLabs-compatible multi-stream-input WebSocket on the wire, with `websockets`: contexts
interleaved on one socket, each sentence's audio with its contextId and word-timed alignment,
close_context after a flush finishes the context (isFinal after its audio), close_context without
one cancels it at once, keep-alives are harmless, the context limit and bad messages are errors."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import websockets

from heard import decode_mp3
from test_elevenlabs_ws import assert_alignment_spans_each_message

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767


def url(server, voice: str = "joe_ar", query: str = "&output_format=pcm_22050") -> str:
    return f"{server.url}/v1/text-to-speech/{voice}/multi-stream-input?model_id=eleven_flash_v2_5{query}"


async def send(ws, **message) -> None:
    await ws.send(json.dumps(message))


async def until_final(ws, context_id: str) -> list[dict]:
    got = []
    while True:
        got.append(json.loads(await ws.recv()))
        if got[-1].get("isFinal") and got[-1]["contextId"] == context_id:
            return got


def pcm(message: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(message["audio"]), "<i2").astype(np.float32) / 32767


async def test_contexts_stream_flush_and_close(server, offline):
    async with websockets.connect(url(server), additional_headers={"xi-api-key": "x"}, max_size=None) as ws:
        await send(ws, text=" ", context_id="a", voice_settings={"stability": 0.5}, xi_api_key="x")
        await send(ws, text=" ", context_id="b")
        await send(ws, text="")  # Pipecat's keep-alive: nothing happens
        await send(ws, text="Hello from context a. And", context_id="a")
        await send(ws, text="Context b speaks too. ", context_id="b")
        first = json.loads(await ws.recv())  # context a's first sentence, before any flush
        assert first["contextId"] == "a" and first["isFinal"] is None
        await send(ws, text=" a second one. ", context_id="a")
        for ctx in "ab":  # LiveKit's and Pipecat's normal end of a turn: flush, then close_context
            await send(ws, text="", context_id=ctx, flush=True)
            await send(ws, context_id=ctx, close_context=True)
        got = [first] + await until_final(ws, "b")
        if not any(m.get("isFinal") and m["contextId"] == "a" for m in got):
            got += await until_final(ws, "a")
        await send(ws, close_socket=True)
        with pytest.raises(websockets.ConnectionClosedOK):
            await ws.recv()
    spoken = {"a": ["Hello from context a.", "And a second one."], "b": ["Context b speaks too."]}
    for ctx, sentences in spoken.items():
        mine = [m for m in got if m["contextId"] == ctx]
        assert mine[-1] == {"isFinal": True, "contextId": ctx}  # after all of its audio
        audio, want = np.concatenate([pcm(m) for m in mine[:-1]]), np.concatenate([offline(s) for s in sentences])
        assert len(audio) == len(want) and np.max(np.abs(audio - want)) <= TOL
        assert "".join("".join(m["alignment"]["chars"]) for m in mine[:-1]) == " ".join(sentences)
        assert_alignment_spans_each_message(mine[:-1])


async def test_mp3_per_context_flushed_before_its_final(server, offline):
    """LiveKit's default format: each context's mp3 stream ends with its flush, before its isFinal."""
    sentence = "An mp3 context, as LiveKit asks for it."
    async with websockets.connect(url(server, query="&output_format=mp3_22050_32"), max_size=None) as ws:
        await send(ws, text=sentence + " ", context_id="m", flush=True)
        await send(ws, context_id="m", close_context=True)
        got = await until_final(ws, "m")
    audio, rate = decode_mp3(b"".join(base64.b64decode(m["audio"]) for m in got[:-1]))
    want = len(offline(sentence))
    assert rate == 22050 and want <= len(audio) <= want + 3 * 1152 and len(got) > 2


async def test_close_context_without_flush_cancels_at_once(server, offline):
    async with websockets.connect(url(server), max_size=None) as ws:
        long = ("Closed soon. Its next sentence is long, and it is never heard at all, because the client "
                "closes this context while the first one plays. Nor this. ")
        await send(ws, text=long, context_id="barge")
        await send(ws, text="The other context goes on. ", context_id="other")
        first = json.loads(await ws.recv())
        assert first["contextId"] == "barge" and first["audio"]
        await send(ws, context_id="barge", close_context=True)  # a barge-in: no flush first
        after = await until_final(ws, "barge")
        assert [m for m in after if m.get("contextId") == "barge"] == [{"isFinal": True, "contextId": "barge"}]
        await send(ws, context_id="other", flush=True)
        await send(ws, context_id="other", close_context=True)
        rest = after + await until_final(ws, "other")
    other = [m for m in rest if m.get("contextId") == "other" and m.get("audio")]
    assert sum(len(pcm(m)) for m in other) == len(offline("The other context goes on."))


async def test_the_context_limit_fails_that_context_only(server):
    limit = server.config.session.max_contexts
    async with websockets.connect(url(server), max_size=None) as ws:
        for i in range(limit):
            await send(ws, text="Open", context_id=f"c{i}")  # text pending: each context is open
        await send(ws, text="One too many", context_id="extra")
        error = json.loads(await ws.recv())
        assert error["error"] == "too_many_contexts" and error["contextId"] == "extra" and error["code"] == 1008
        await send(ws, text=" context.", context_id="c0", flush=True)  # the socket is still good
        await send(ws, context_id="c0", close_context=True)
        got = await until_final(ws, "c0")
        assert got[0]["contextId"] == "c0" and got[0]["audio"]


@pytest.mark.parametrize("voice, query, frame, code", [
    ("nobody", "", None, "unknown_voice"),
    ("joe", "&output_format=opus_48000_32", None, "unsupported_output_format"),
    ("joe", "", "{not json", "invalid_json"),
    ("joe", "", json.dumps({"text": 1, "context_id": "a"}), "invalid_message"),
    ("joe", "", json.dumps({"text": "Hi", "context_id": 7}), "invalid_message"),
    ("joe", "", json.dumps({"context_id": "a", "flush": "yes"}), "invalid_message"),
    ("joe", "", json.dumps({"context_id": "a"}), "invalid_message"),
    ("joe", "", json.dumps({"text": " ", "context_id": "a", "voice_settings": {"speed": 3}}),
     "invalid_voice_settings"),
    ("joe", "", json.dumps({"text": "x" * 2001, "context_id": "a"}), "text_too_long"),
    ("joe", "", json.dumps({"text": "Hi", "context_id": "c" * 257}), "context_id_too_long"),
])
async def test_a_bad_request_is_an_error_then_close_1008(server, voice, query, frame, code):
    async with websockets.connect(url(server, voice, query or "&output_format=pcm_22050")) as ws:
        if frame is not None:
            await ws.send(frame)
        error = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await ws.recv()
    assert error["error"] == code and error["message"] and error["code"] == 1008
    assert len(error["message"]) < 400 and "contextId" not in error  # a bad id is never echoed
    assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason.startswith(f"{code}: ")
