"""Parsing client frames and serialising events of the native protocol (no server)."""

from __future__ import annotations

import json

import msgpack
import pytest

from stream_server.server.events import Audio, Done, Error, Ready, SentenceEnd, SessionError
from stream_server.server.native_messages import (
    CancelMessage,
    TextMessage,
    parse_client_frame,
    serialise_event,
)


def test_text_defaults_context():
    msg = parse_client_frame(json.dumps({"type": "text", "text": "hi"}), msgpack_mode=False)
    assert msg == TextMessage(type="text", text="hi", context_id="default")


def test_msgpack_frames_parse_the_same():
    frame = msgpack.packb({"type": "cancel", "context_id": "c7"})
    assert parse_client_frame(frame, msgpack_mode=True) == CancelMessage(type="cancel", context_id="c7")


@pytest.mark.parametrize(
    "frame, mode, code",
    [
        ("nope", False, "invalid_json"),
        (b"\x00", False, "binary_not_supported"),
        (b"\xc1", True, "invalid_msgpack"),
        ('{"type": "text"}', True, "invalid_message"),
        ("42", False, "invalid_message"),
        ('{"type": "speak"}', False, "unknown_type"),
        ('{"text": "no type"}', False, "unknown_type"),
        ('{"type": "text", "text": 5}', False, "invalid_message"),
        ('{"type": "config", "sample_rate": "fast"}', False, "invalid_message"),
    ],
)
def test_bad_frames_raise_coded_errors(frame, mode, code):
    with pytest.raises(SessionError) as err:
        parse_client_frame(frame, msgpack_mode=mode)
    assert err.value.code == code and err.value.message


def test_json_mode_sends_audio_as_raw_bytes_and_control_as_json():
    assert serialise_event(Audio("c", 0, b"\x01\x02"), msgpack_mode=False) == b"\x01\x02"
    end = json.loads(serialise_event(SentenceEnd("c", 2, 100, False), msgpack_mode=False))
    assert end == {"type": "sentence_end", "context_id": "c", "index": 2, "samples": 100, "cached": False}
    assert json.loads(serialise_event(Done(), False)) == {"type": "done"}
    err = json.loads(serialise_event(Error("x", "y"), False))
    assert err == {"type": "error", "code": "x", "message": "y"}


def test_msgpack_mode_wraps_everything():
    audio = msgpack.unpackb(serialise_event(Audio("c", 1, b"\x00\x01"), msgpack_mode=True))
    assert audio == {"type": "audio", "context_id": "c", "index": 1, "pcm": b"\x00\x01"}
    ready = msgpack.unpackb(serialise_event(Ready("s", "joe", 16000, "pcm_f32le"), True))
    assert ready["type"] == "ready" and ready["sample_rate"] == 16000
