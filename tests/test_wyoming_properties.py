"""Property-based tests of the Wyoming server's input: any sequence of events (synthesize,
synthesize-start / -chunk / -stop with any data, inline or as data bytes), bad header lines,
wrong lengths and events over wyoming.max_event_bytes, through the real handler's read loop over
an in-memory stream (sessions on a source that answers at once). Every bad event is answered with
an error event, the connection goes on and still speaks afterwards, and nothing is logged at
ERROR."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wyoming.event import async_read_event

from fake_source import InstantSource
from stream_server.config import AppConfig
from stream_server.server.services import Services
from stream_server.server.wyoming_tts import WyomingTtsHandler

MAX_EVENT = 4096
TYPES = ["synthesize", "synthesize-start", "synthesize-chunk", "synthesize-stop", "describe", "ping", "nonsense"]


def services() -> Services:
    config = AppConfig.model_validate({"wyoming": {"max_event_bytes": MAX_EVENT}, "session": {"max_text_chars": 1000}})
    voices = {name: SimpleNamespace(sample_rate=22050, kind="piper_vits", language="en_US", speakers=[],
                                    espeak_voice="en-us", control=None, max_sentence_frames=None, hop_length=256)
              for name in config.voices}
    return Services(config, client=None, voices=voices, source=InstantSource())


class Writer:
    """The handler's side of the connection: what it wrote."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def writelines(self, lines) -> None:
        for line in lines:
            self.data += line

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


async def converse(raw: bytes) -> list:
    """Feed the bytes to a handler as one connection; the events it answered with."""
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    writer = Writer()
    await asyncio.wait_for(WyomingTtsHandler(services(), reader, writer).run(), 60)
    answer = asyncio.StreamReader()
    answer.feed_data(bytes(writer.data))
    answer.feed_eof()
    events = []
    while (event := await async_read_event(answer)) is not None:
        events.append(event)
    return events


def frame(kind: str, data=None, inline: bool = False) -> bytes:
    header: dict = {"type": kind}
    body = b""
    if data is not None and inline:
        header["data"] = data
    elif data is not None:
        body = json.dumps(data).encode()
        header["data_length"] = len(body)
    return json.dumps(header).encode() + b"\n" + body


# Every code point, unpaired surrogates included (JSON may escape one: "\udcff"), drawn often.
any_char = st.characters(codec=None, exclude_categories=()) | st.characters(
    min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(any_char, max_size=60),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(any_char, max_size=6), inner, max_size=3),
    max_leaves=8,
)
voices = (
    st.none() | st.fixed_dictionaries({"name": st.sampled_from(["joe_ar", "joe", "alloy", "nobody"]) | values}) | values
)
data = (
    st.fixed_dictionaries({"text": st.text(any_char, max_size=80) | st.sampled_from(["Hi there. ", "   ", "x " * 600])
                           | values},
                          optional={"voice": voices})
    | st.dictionaries(st.sampled_from(["text", "voice", "context"]) | st.text(max_size=6), values, max_size=3)
    | values
)
events = st.one_of(
    st.builds(frame, st.sampled_from(TYPES) | st.text(max_size=12), data, st.booleans()),
    st.builds(frame, st.sampled_from(TYPES)),
    # a line that is no header: any text (one line), JSON that is not an event
    st.text(max_size=40).map(lambda t: t.replace("\n", " ").encode() + b"\n"),
    values.map(lambda v: json.dumps(v).encode() + b"\n"),
    # lengths that are no lengths
    st.sampled_from([-1, "12", 1.5, True, [3]]).map(
        lambda n: json.dumps({"type": "synthesize", "data_length": n}).encode() + b"\n"
    ),
    # too large: the declared bytes follow, and are skipped
    st.integers(1, 3 * MAX_EVENT).map(
        lambda n: json.dumps({"type": "synthesize", "data_length": MAX_EVENT, "payload_length": n}).encode()
        + b"\n" + bytes(MAX_EVENT + n)
    ),
    # data bytes that are not a JSON object
    st.binary(max_size=20).map(
        lambda b: json.dumps({"type": "synthesize-chunk", "data_length": len(b)}).encode() + b"\n" + b
    ),
)
PROBE = frame("synthesize-stop") + frame("synthesize", {"text": "Still here."})


def spoke_last(answers: list) -> bool:
    """The connection's last answers are the probe's: synthesize-stopped, then one audio run."""
    kinds = [e.type for e in answers]
    if "synthesize-stopped" not in kinds:
        return False
    tail = kinds[len(kinds) - kinds[::-1].index("synthesize-stopped"):]
    return tail[:1] == ["audio-start"] and tail[-1:] == ["audio-stop"] and "audio-chunk" in tail


@given(st.lists(events, max_size=12))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_events_get_answers_or_error_events_and_the_connection_still_speaks(caplog, script):
    caplog.set_level(logging.WARNING)
    caplog.clear()
    answers = asyncio.run(converse(b"".join(script) + PROBE))
    assert spoke_last(answers), [e.type for e in answers]
    for event in answers:
        if event.type == "error":
            assert event.data["code"] and event.data["text"] and len(event.data["text"]) < 400
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


def test_each_kind_of_bad_input_is_named():
    bad = [
        (b"not json\n", "invalid_event"),
        (b"[1, 2]\n", "invalid_event"),
        (json.dumps({"type": "synthesize", "data_length": -5}).encode() + b"\n", "invalid_event"),
        (json.dumps({"type": "synthesize", "payload_length": MAX_EVENT + 1}).encode() + b"\n" + bytes(MAX_EVENT + 1),
         "event_too_large"),
        (frame("synthesize", {"text": 5}), "invalid_event"),
        (frame("synthesize", {"text": "Hi.", "voice": "joe"}), "invalid_event"),
        (frame("synthesize", {"text": "Hi.", "voice": {"name": 7}}), "invalid_event"),
        (frame("synthesize", {"text": "Hi.", "voice": {"name": "nobody"}}), "unknown_voice"),
        (frame("synthesize", {"text": "  "}), "empty_text"),
        (frame("synthesize", {"text": "x " * 600}), "text_too_long"),
        (frame("synthesize", [1, 2]), "invalid_event"),
        (frame("synthesize", "text", inline=True), "invalid_event"),
        (frame("synthesize-chunk", {"text": None}), "invalid_event"),
        (frame("synthesize-start", {"voice": ["joe"]}), "invalid_event"),
        (b"x" * 70_000 + b"\n", "invalid_event"),  # a header line past the reader's 64 KiB
        (frame("synthesize", {"text": "Hi \udcff."}), "invalid_text"),  # JSON, but not valid Unicode
        (frame("synthesize", {"text": "Hi \udcff."}, inline=True), "invalid_text"),
        (json.dumps({"type": "synthesize", "data": {"text": "Hi."}}).encode()[:-1] + b', "\xed\xb3\xbf": 1}\n',
         "invalid_text"),  # an encoded surrogate, which json.loads lets through from bytes
    ]
    for raw, code in bad:
        answers = asyncio.run(converse(raw + PROBE))
        codes = [e.data.get("code") for e in answers if e.type == "error"]
        assert code in codes, (raw[:60], codes)
        assert spoke_last(answers), raw[:60]
