"""Property-based tests of what clients send: any JSON value, any code point, wrong types, huge and
negative numbers, deep nesting. Every parser answers with a parsed message or a coded client
error, never anything else; on the real server the session survives every bad frame and still
speaks afterwards."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

import httpx
import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from stream_server.config import AppConfig
from stream_server.server.alignment import ChunkAligner, word_alignment, word_char_spans
from stream_server.server.deepgram_ws import Control, Speak
from stream_server.server.deepgram_ws import parse_message as parse_deepgram
from stream_server.server.deepgram_ws import query_settings as deepgram_query_settings
from stream_server.server.elevenlabs_multi import parse_multi_message
from stream_server.server.elevenlabs_ws import _settings as elevenlabs_settings
from stream_server.server.elevenlabs_ws import parse_message
from stream_server.server.events import SessionError
from stream_server.server.native_messages import EndMessage, parse_client_frame
from stream_server.server.openai_speech import SpeechRequest, _BadRequest, _parse
from stream_server.server.word_times import WordTime
from stream_server.text.words import text_words

NATIVE_TYPES = ["config", "text", "flush", "cancel", "end", "keepalive", "speak", ""]
SERVICES = SimpleNamespace(config=AppConfig())  # what the OpenAI body parser reads



# Every code point, unpaired surrogates included (st.text() leaves them out: they cannot be
# encoded, which is what a JSON "\udcff" gives a parser all the same); surrogates drawn often.
any_char = st.characters(codec=None, exclude_categories=()) | st.characters(
    min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
any_text = st.text(any_char)


def values(int_bits: int) -> st.SearchStrategy:
    """Any JSON-like value: huge and negative numbers, NaN, any code point, nesting."""
    scalars = (
        st.none() | st.booleans() | any_text | st.floats(allow_nan=True, allow_infinity=True)
        | st.integers(min_value=-(2 ** (int_bits - 1)), max_value=2 ** (int_bits - 1) - 1)
    )
    nested = lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4)  # noqa: E731
    return st.recursive(scalars, nested, max_leaves=20)


def encodable(value) -> bool:
    """Every string in a parsed value (fields, keys, nested) is valid Unicode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(encodable(k) and encodable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(encodable(v) for v in value)
    if hasattr(value, "__dict__"):
        return encodable(vars(value))
    return True


json_values = values(int_bits=72)
msgpack_values = values(int_bits=64).filter(encodable)  # what msgpack can carry (valid UTF-8 only)


def field_values(keys: list[str], of: st.SearchStrategy = json_values) -> st.SearchStrategy[dict]:
    """Objects with the protocol's own field names (so validation is reached) and odd values."""
    return st.dictionaries(st.sampled_from(keys) | st.text(any_char, max_size=8), of, max_size=6)


def native_objects(of: st.SearchStrategy) -> st.SearchStrategy[dict]:
    fields = field_values(["text", "context_id", "voice", "sample_rate", "format"], of)
    return st.builds(lambda t, rest: {**rest, "type": t}, st.sampled_from(NATIVE_TYPES) | of, fields)
deep = st.integers(min_value=1, max_value=200_000).map(lambda n: "[" * n + "]" * n)
native_text_frames = (
    native_objects(json_values).map(lambda o: json.dumps(o, allow_nan=True)) | json_values.map(json.dumps)
    | st.builds(lambda t, c: json.dumps({"type": "text", "text": t, "context_id": c}), any_text, any_text)
    | any_text | deep
)
native_frames = native_text_frames.map(lambda f: (f, False)) | st.binary().map(lambda b: (b, False)) | (
    # msgpack carries valid UTF-8 only: the keys drawn for an object must be encodable too
    (native_objects(msgpack_values) | msgpack_values).filter(encodable)
    .map(lambda o: (msgpack.packb(o, use_bin_type=True), True))
    | st.binary().map(lambda b: (b, True)) | any_text.map(lambda t: (t, True))
)


@given(native_frames)
@example(('{"type": "text", "text": "a\\udcff"}', False))
@example(('{"type": "text", "text": "hi", "context_id": "\\ud800"}', False))
@settings(max_examples=400)
def test_native_parser_answers_every_frame_with_a_message_or_a_coded_error(frame_mode):
    frame, mode = frame_mode
    try:
        msg = parse_client_frame(frame, msgpack_mode=mode)
    except SessionError as exc:
        assert exc.code and exc.message
    else:
        assert encodable(msg), msg  # else: invalid_text


openai_bodies = (
    field_values(["model", "input", "voice", "response_format", "speed", "stream_format", "instructions"])
    .map(lambda o: json.dumps(o, allow_nan=True).encode())
    | st.builds(lambda i, v: json.dumps({"model": "tts-1", "input": i, "voice": v}).encode(), any_text, any_text)
    | json_values.map(lambda v: json.dumps(v).encode()) | st.binary() | deep.map(str.encode)
)


@given(openai_bodies)
@example(b'{"model": "tts-1", "input": "Hello \\udcff.", "voice": "alloy"}')
@settings(max_examples=400)
def test_openai_body_parser_answers_every_body_with_a_request_or_a_400(raw):
    try:
        req = _parse(SERVICES, raw)
    except _BadRequest as exc:
        assert exc.code and exc.message
    else:
        assert isinstance(req, SpeechRequest) and req.input.strip() and encodable(req)


elevenlabs_messages = (
    field_values(["text", "flush", "voice_settings", "try_trigger_generation", "xi_api_key"])
    .map(lambda o: json.dumps(o, allow_nan=True))
    | st.builds(lambda t, vs: json.dumps({"text": t, "voice_settings": vs}, allow_nan=True), any_text,
                field_values(["speed", "stability"]) | json_values)
    | json_values.map(json.dumps) | any_text | st.binary() | deep
)


@given(elevenlabs_messages)
@example('{"text": "Hello \\udcff. "}')
@settings(max_examples=400)
def test_elevenlabs_message_parser_answers_every_message_with_settings_or_a_coded_error(raw):
    try:
        message = parse_message(raw)
        settings_ = elevenlabs_settings(_Defaults(), "joe_ar", 22050, message)
    except SessionError as exc:
        assert exc.code and exc.message
    else:
        assert 0 < settings_.options.length_scale < float("inf") and encodable(message)


class _Defaults:
    """The part of Services that the ElevenLabs settings read."""

    @staticmethod
    def default_settings():
        from stream_server.engine.requests import SynthesisOptions
        from stream_server.server.session import SessionSettings

        return SessionSettings("joe_ar", 22050, "pcm_s16le", SynthesisOptions())


def survives(frame, mode: bool) -> bool:
    """Frames after which the protocol says the session goes on (all but a valid `end`)."""
    try:
        return not isinstance(parse_client_frame(frame, msgpack_mode=mode), EndMessage)
    except SessionError:
        return True


@pytest.mark.slow
@given(st.lists(native_text_frames, min_size=1, max_size=6))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_native_session_survives_any_frames_and_still_speaks(server, caplog, frames):
    caplog.set_level(logging.WARNING, logger="stream_server")
    caplog.clear()
    # a WebSocket text frame is UTF-8: a client cannot send a lone surrogate raw (an escaped one
    # inside JSON, "\\udcff", is sent, and is what reaches the parser: the tests above)
    frames = [f for f in frames if encodable(f) and survives(f, False)]
    with connect(f"{server.url}/v1/tts/stream", max_size=None, open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        for frame in frames:
            ws.send(frame)
        ws.send(json.dumps({"type": "text", "text": "Still here.", "context_id": "probe"}))
        ws.send(json.dumps({"type": "flush", "context_id": "probe"}))
        spoke = False
        while True:
            reply = ws.recv(timeout=60)
            if isinstance(reply, bytes):
                continue
            msg = json.loads(reply)
            spoke |= msg["type"] == "sentence_end" and msg.get("context_id") == "probe"
            if msg["type"] == "flushed" and msg["context_id"] == "probe":
                break
    assert spoke
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not crashes, [r.getMessage() for r in crashes]


deepgram_messages = (
    field_values(["type", "text"]).map(lambda o: json.dumps(o, allow_nan=True))
    | st.builds(lambda t: json.dumps({"type": "Speak", "text": t}), any_text)
    | st.builds(lambda t, text: json.dumps({"type": t, "text": text}, allow_nan=True),
                st.sampled_from(["Speak", "Flush", "Clear", "Close", "speak", ""]) | json_values, json_values)
    | json_values.map(json.dumps) | any_text | st.binary() | deep
)


@given(deepgram_messages)
@example('{"type": "Speak", "text": "Hello \\udcff."}')
@settings(max_examples=400)
def test_deepgram_message_parser_answers_every_message_with_a_message_or_a_coded_error(raw):
    try:
        msg = parse_deepgram(raw)
    except SessionError as exc:
        assert exc.code and exc.message
    else:
        assert isinstance(msg, (Speak, Control)) and (not isinstance(msg, Speak) or isinstance(msg.text, str))
        assert encodable(msg)


deepgram_queries = st.dictionaries(
    st.sampled_from(["model", "encoding", "sample_rate", "speed", "container"]) | st.text(max_size=8),
    st.text() | st.sampled_from(["linear16", "mulaw", "alaw", "8000", "22050", "24000", "1.0", "nan", "-0"]),
    max_size=5,
)


@given(deepgram_queries)
@settings(max_examples=400)
def test_deepgram_query_answers_every_handshake_with_settings_or_a_coded_error(query):
    from starlette.datastructures import QueryParams

    services = SimpleNamespace(config=AppConfig(), voice_rates={"joe_ar": 22050, "joe": 22050},
                               default_settings=_Defaults.default_settings)
    try:
        s = deepgram_query_settings(services, QueryParams(query))
    except SessionError as exc:
        assert exc.code and exc.message
    else:
        assert s.voice in services.voice_rates and 0 < s.options.length_scale < float("inf")


multi_messages = (
    field_values(["text", "context_id", "flush", "close_context", "close_socket", "voice_settings"])
    .map(lambda o: json.dumps(o, allow_nan=True))
    | st.builds(lambda t, c, f: json.dumps({"text": t, "context_id": c, "flush": f}, allow_nan=True),
                any_text, any_text, json_values | st.booleans())
    | json_values.map(json.dumps) | any_text | st.binary() | deep
)


@given(multi_messages)
@example('{"text": "Hello \\udcff. ", "context_id": "c"}')
@example('{"text": "Hello. ", "context_id": "\\udcff"}')
@settings(max_examples=400)
def test_elevenlabs_multi_parser_answers_every_message_with_a_message_or_a_coded_error(raw):
    try:
        msg = parse_multi_message(raw)
    except SessionError as exc:
        assert exc.code and exc.message
    else:
        assert isinstance(msg.context_id, str) and 0 < len(msg.context_id) <= 256
        assert msg.text is None or isinstance(msg.text, str)
        assert msg.speed is None or 0.7 <= msg.speed <= 1.2
        assert encodable(msg)


@given(st.text())
@settings(max_examples=400)
def test_alignment_words_are_the_sessions_words(text):
    assert [text[a:b] for a, b in word_char_spans(text)] == text_words(text)


@given(st.text(min_size=1, max_size=80), st.integers(1, 200_000), st.data())
@settings(max_examples=400)
def test_word_alignment_is_ordered_contiguous_and_covers_the_audio(text, samples, data):
    n = len(word_char_spans(text))
    times = sorted(data.draw(st.lists(st.floats(-1, 40), min_size=2 * n, max_size=2 * n)))
    words = [WordTime("w", a, b) for a, b in zip(times[::2], times[1::2])]
    al = word_alignment(text, words or None, samples, 22050)
    starts, durations = al["charStartTimesMs"], al["charDurationsMs"]
    assert al["chars"] == list(text) and len(starts) == len(durations) == len(text)
    assert all(d >= 0 for d in durations) and starts[0] >= 0
    assert [s + d for s, d in zip(starts, durations)][:-1] == starts[1:]
    assert starts[-1] + durations[-1] == round(1000 * samples / 22050)


@given(st.text(min_size=1, max_size=80), st.lists(st.integers(1, 30_000), min_size=1, max_size=12), st.data())
@settings(max_examples=300)
def test_chunk_alignments_spell_the_sentence_and_span_each_chunk(text, chunks, data):
    """Split over a sentence's chunks, the alignments hold every character once, in order, each
    message's characters contiguous to its chunk's end, and the spans add up to the sentence."""
    n = len(word_char_spans(text))
    times = sorted(data.draw(st.lists(st.floats(0, 4), min_size=2 * n, max_size=2 * n)))
    words = [WordTime("w", a, b) for a, b in zip(times[::2], times[1::2])] or None
    aligner, at, chars, total = ChunkAligner(text, words), 0, "", 0
    for i, samples in enumerate(chunks):
        al = aligner.take(1000 * at / 22050, 1000 * (at + samples) / 22050, i == len(chunks) - 1)
        at += samples
        if al is None:
            continue
        starts, durations = al["charStartTimesMs"], al["charDurationsMs"]
        assert starts[0] >= 0 and all(d >= 0 for d in durations)
        assert [s + d for s, d in zip(starts, durations)][:-1] == starts[1:]
        chars += "".join(al["chars"])
        total += starts[-1] + durations[-1]
    assert chars == text
    assert total <= round(1000 * at / 22050)


HUGE = "x" * (1 << 20)  # a 1 MB client value


def test_client_values_are_quoted_short_in_every_reply():
    """A value of any size a client sends is quoted cut short (events.shown) in the error that
    answers it, and so in the log line of that error: never echoed whole."""
    from starlette.datastructures import QueryParams

    from stream_server.server.elevenlabs_ws import parse_output_format
    from stream_server.server.gpt_sovits_request import Refused, TtsRequest, check
    from stream_server.server.native_messages import parse_speed
    from stream_server.server.native_ws import _query_settings
    from stream_server.server.session_settings import SessionSettings, VoiceBook

    def message(call) -> str:
        try:
            call()
        except (SessionError, _BadRequest, Refused) as exc:
            text = exc.message if hasattr(exc, "message") else json.dumps(exc.body)
            assert len(text) < 400, text[:200]
            return text
        raise AssertionError("not refused")

    message(lambda: parse_client_frame(json.dumps({"type": HUGE}), msgpack_mode=False))
    message(lambda: parse_speed(HUGE))
    message(lambda: parse_speed([HUGE]))
    message(lambda: parse_output_format(HUGE))
    message(lambda: _parse(SERVICES, json.dumps({"model": "tts-1", "input": "hi", "voice": "alloy",
                                                 "response_format": HUGE}).encode()))
    message(lambda: VoiceBook({"v": 22050}, {"v": ["a", "b"]}).checked(SessionSettings(f"v#{HUGE}", 22050)))
    message(lambda: parse_deepgram(json.dumps({"type": HUGE})))
    defaults = _Defaults.default_settings()
    for query in ({"encoding": HUGE}, {"sample_rate": HUGE}):
        ws = SimpleNamespace(query_params=QueryParams(query))
        message(lambda ws=ws: asyncio.run(_query_settings(ws, defaults)))
    control = SimpleNamespace(text_languages=("en",), split_methods=("cut5",), version="v2")
    base = {"text": "hi", "text_lang": "en", "ref_audio_path": "r.wav", "prompt_lang": "en"}
    for field in ("text_lang", "media_type", "text_split_method"):
        message(lambda field=field: check(TtsRequest(**{**base, field: HUGE}), control))


async def test_origins_and_paths_are_quoted_short_in_a_refusal(caplog):
    from stream_server.server.access import AccessMiddleware, AccessPolicy

    async def app(scope, receive, send):
        raise AssertionError("refused requests never reach the app")

    layer = AccessMiddleware(app, AccessPolicy.from_config(AppConfig()))
    transport = httpx.ASGITransport(app=layer)
    caplog.set_level(logging.WARNING)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        r = await client.get("/tts/" + HUGE[:60000], headers={"Origin": f"https://{HUGE[:60000]}.example"})
        assert r.status_code == 403 and len(r.content) < 600
    assert caplog.records and all(len(rec.getMessage()) < 600 for rec in caplog.records)
