"""The native protocol's messages: parsing client frames, serialising session events.

See docs/protocol.md. JSON text frames by default; with ?encoding=msgpack every frame, both
ways, is a binary msgpack map with the same fields.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Annotated, Any, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .events import Audio, SessionError, SessionEvent, Words, shown
from .wire import loads_json
from .word_times import context_words

_EVENT_TYPES = {
    "Ready": "ready",
    "SentenceStart": "sentence_start",
    "Words": "words",
    "Audio": "audio",
    "SentenceEnd": "sentence_end",
    "Flushed": "flushed",
    "Cancelled": "cancelled",
    "Done": "done",
    "Error": "error",
}


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ConfigMessage(_Message):
    type: Literal["config"]
    voice: str | None = None
    sample_rate: int | None = None
    format: str | None = None
    speed: Any = None  # checked by parse_speed (one error code for a bad type or range)


MIN_SPEED, MAX_SPEED = 0.5, 2.0


def parse_speed(value: Any) -> float:
    """A `speed` from a config message or the query (a string there): a number in [0.5, 2.0]."""
    try:
        if isinstance(value, bool):
            raise ValueError
        speed = float(value)
    except (TypeError, ValueError):
        speed = math.nan
    if not MIN_SPEED <= speed <= MAX_SPEED:  # NaN fails too
        raise SessionError(
            "invalid_speed",
            f"speed must be a number from {MIN_SPEED} to {MAX_SPEED} (1.0: the voice's own pace); got {shown(value)}",
        )
    return speed


class TextMessage(_Message):
    type: Literal["text"]
    text: str
    context_id: str = "default"


class FlushMessage(_Message):
    type: Literal["flush"]
    context_id: str = "default"


class CancelMessage(_Message):
    type: Literal["cancel"]
    context_id: str = "default"


class EndMessage(_Message):
    type: Literal["end"]


class KeepaliveMessage(_Message):
    """Keeps an otherwise silent session open (session.idle_timeout_seconds); no reply."""

    type: Literal["keepalive"]


ClientMessage = Annotated[
    ConfigMessage | TextMessage | FlushMessage | CancelMessage | EndMessage | KeepaliveMessage,
    Field(discriminator="type"),
]
_client_message = TypeAdapter(ClientMessage)
_KNOWN_TYPES = {"config", "text", "flush", "cancel", "end", "keepalive"}


def parse_client_frame(frame: str | bytes, msgpack_mode: bool) -> ClientMessage:
    """Decode and validate one client frame, or raise SessionError with a code."""
    data = _decode(frame, msgpack_mode)
    if not isinstance(data, dict):
        raise SessionError("invalid_message", "a message must be an object with a 'type' field")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _KNOWN_TYPES:
        raise SessionError(
            "unknown_type", f"unknown message type {shown(kind)}; expected one of {sorted(_KNOWN_TYPES)}"
        )
    try:
        return _client_message.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "message"
        raise SessionError("invalid_message", f"{kind}: {where}: {first['msg']}") from None


def _decode(frame: str | bytes, msgpack_mode: bool) -> Any:
    if msgpack_mode:
        if isinstance(frame, str):
            raise SessionError("invalid_message", "msgpack encoding expects binary frames")
        try:
            return msgpack.unpackb(frame, raw=False)
        except Exception:
            raise SessionError("invalid_msgpack", "frame is not valid msgpack") from None
    if isinstance(frame, bytes):
        raise SessionError(
            "binary_not_supported", "binary frames from the client are not accepted; send JSON text"
        )
    try:
        return loads_json(frame)
    except json.JSONDecodeError as exc:
        raise SessionError("invalid_json", f"malformed JSON: {exc.msg} at position {exc.pos}") from None
    except ValueError as exc:
        raise SessionError("invalid_json", f"malformed JSON: {exc}") from None


def event_to_dict(event: SessionEvent) -> dict[str, Any]:
    body: dict[str, Any] = {"type": _EVENT_TYPES[type(event).__name__]}
    if isinstance(event, Words):  # on the context's clock, as docs/protocol.md has them
        return {**body, "context_id": event.context_id, "index": event.index,
                "words": context_words(event.words, event.offset)}
    body.update(dataclasses.asdict(event))
    body.pop("last", None)  # an Audio's, for the adapters that frame a sentence's chunks: not on this wire
    for optional in ("context_id", "retry_after"):  # an error's, sent only when it has one
        if body.get(optional, "") is None:
            del body[optional]
    return body


def serialise_event(event: SessionEvent, msgpack_mode: bool) -> str | bytes:
    """JSON text for control events and raw PCM bytes for audio; or msgpack for everything."""
    if msgpack_mode:
        return msgpack.packb(event_to_dict(event), use_bin_type=True)
    if isinstance(event, Audio):
        return event.pcm
    return json.dumps(event_to_dict(event))
