"""Property-based tests of the REST parsers #19 added: Deepgram's `POST /v1/speak` (body and query)
and ElevenLabs' `POST /v1/text-to-speech/{voice}` (body, `output_format`, voice settings). Any JSON
value, any code point, wrong types, huge sizes and nesting get either a checked request or that
API's own coded client error (a 4xx), never anything else."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from stream_server.server.deepgram_http import ENCODINGS, DeepgramError, output_of, text_of
from stream_server.server.elevenlabs_formats import SERVED, parse_http_format
from stream_server.server.elevenlabs_http import Refused, parse_body
from stream_server.server.elevenlabs_ws import voice_speed
from stream_server.server.events import SessionError
from test_input_properties import any_text, deep, encodable, field_values, json_values


def bodies(keys: list[str]) -> st.SearchStrategy[bytes]:
    return (
        field_values(keys).map(lambda o: json.dumps(o, allow_nan=True).encode())
        | st.builds(lambda t: json.dumps({"text": t}).encode(), any_text)
        | json_values.map(lambda v: json.dumps(v, allow_nan=True).encode())
        | st.binary() | deep.map(str.encode) | st.just(b"")
    )


@given(bodies(["text", "model_id", "voice_settings"]))
@example(b'{"text": "Hello \\udcff."}')
@example(json.dumps({"text": "x" * 5000}).encode())
@settings(max_examples=400)
def test_deepgram_rest_body_gives_text_or_its_coded_error(raw):
    try:
        text = text_of(raw)
    except DeepgramError as exc:
        assert exc.status in (400, 413) and exc.code and exc.message and len(exc.message) < 400
    else:
        assert isinstance(text, str) and text.strip() and len(text) <= 2000 and encodable(text)


deepgram_queries = st.dictionaries(
    st.sampled_from(["model", "encoding", "container", "sample_rate", "bit_rate"]) | st.text(max_size=8),
    st.text() | st.sampled_from([*ENCODINGS, "alaw", "aac", "wav", "ogg", "none", "8000", "22050", "24000.0",
                                 "48000", "32000", "nan", "-0", "1e999"]),
    max_size=5,
)


@given(deepgram_queries)
@settings(max_examples=400)
def test_deepgram_rest_query_gives_an_output_or_a_400(query):
    try:
        out = output_of(QueryParams(query))
    except DeepgramError as exc:
        assert exc.status == 400 and exc.code and exc.message and len(exc.message) < 400
    else:
        spec = ENCODINGS[out.encoding]
        assert out.container in spec.containers and out.sample_rate in spec.rates
        assert out.bit_rate is None or out.bit_rate in spec.bit_rates


@given(bodies(["text", "model_id", "voice_settings", "seed", "language_code"]))
@example(b'{"text": "Hello \\udcff."}')
@example(b'{"text": "Hi.", "voice_settings": {"speed": 1e999}}')
@settings(max_examples=400)
def test_elevenlabs_http_body_gives_text_and_speed_or_a_422(raw):
    try:
        data = parse_body(raw)
        speed = voice_speed(data)
    except Refused as exc:
        assert exc.status == 422 and exc.code and exc.message and len(exc.message) < 400
    except SessionError as exc:  # the route answers these 422 (read_request)
        assert exc.code and exc.message and len(exc.message) < 400
    else:
        assert data["text"].strip() and encodable(data["text"])
        assert speed is None or 0 < speed < float("inf")


@given(st.sampled_from(SERVED) | any_text | st.text(max_size=20).map(lambda s: f"mp3_{s}"))
@example("x" * (1 << 20))
@settings(max_examples=400)
def test_elevenlabs_output_format_is_served_or_refused_naming_the_served(name):
    try:
        fmt = parse_http_format(name)
    except SessionError as exc:
        assert exc.code == "unsupported_output_format" and "mp3_44100_128" in exc.message
        assert len(exc.message) < 1200  # the served list, and the asked name cut short
    else:
        assert name in SERVED and fmt.sample_rate > 0 and fmt.kind in ("mp3", "pcm", "ulaw", "wav")
