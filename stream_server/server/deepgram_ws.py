"""Deepgram-compatible streaming TTS WebSocket at /v1/speak (Deepgram Aura's protocol): a thin
adapter onto Session (docs/deepgram.md).

One socket = one session with one context. `Speak` text streams in, audio goes out as binary
frames as it is synthesized (sentence by sentence), `Flush` speaks what is buffered and is answered
`Flushed` after its audio, `Clear` cancels at once (`Cleared`), `Close` closes, `KeepAlive` keeps a
quiet socket open (a session silent for `session.idle_timeout_seconds` is closed: idle.py). Bad query
parameters refuse the handshake (HTTP 400, reason in the `dg-error` header, as Deepgram does); a bad
message is answered with an `Error` message and close 1008.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..engine.requests import SynthesisOptions
from .admission import retry_after_headers, try_again_later, ws_close_code
from .compat import FlushCounter, at_speed, close_if_connected, close_reason, resolve_voice_or_default
from .events import Audio, Cancelled, Error, Flushed, Ready, SessionError, SessionEvent, shown
from .idle import idle_error, receive_or_idle
from .services import Services
from .session import Session
from .session_settings import SessionSettings
from .wire import loads_json

# Deepgram's encodings -> our formats, and the default sample rate of each.
ENCODINGS = {"linear16": ("pcm_s16le", 24000), "mulaw": ("ulaw", 8000)}
MIN_SPEED, MAX_SPEED = 0.7, 1.5  # Deepgram's range for `speed`
CONTEXT = "default"  # one context per socket


@dataclass(frozen=True)
class Speak:
    text: str


@dataclass(frozen=True)
class Control:
    kind: str  # "Flush", "Clear", "Close" or "KeepAlive"


CONTROLS = ("Flush", "Clear", "Close", "KeepAlive")
KEEPALIVE = '{"type": "KeepAlive"}'


def parse_message(raw: str | bytes) -> Speak | Control:
    """A client message (or SessionError)."""
    try:
        data = loads_json(raw)
    except ValueError:
        raise SessionError("invalid_json", "messages must be JSON text") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise SessionError("invalid_message", 'a message must be an object with a string "type"')
    kind = data["type"]
    if kind == "Speak":
        if not isinstance(data.get("text"), str):
            raise SessionError("invalid_message", 'Speak needs a string "text"')
        return Speak(data["text"])
    if kind in CONTROLS:
        return Control(kind)
    raise SessionError("unknown_type", f"unknown message type {shown(kind)}; use Speak, {', '.join(CONTROLS)}")


def query_settings(services: Services, query: QueryParams) -> SessionSettings:
    """Session settings from the handshake's query (or SessionError): `model` names a voice through
    `voice_aliases` (any other model: the default voice), `encoding`, `sample_rate`, `speed`."""
    encoding = query.get("encoding", "linear16")
    if encoding not in ENCODINGS:
        raise SessionError(
            "unsupported_encoding", f"encoding {shown(encoding)} is not supported; use one of {list(ENCODINGS)}"
        )
    fmt, default_rate = ENCODINGS[encoding]
    rate = query.get("sample_rate", str(default_rate))
    if not rate.isdecimal() or len(rate) > 6:
        raise SessionError("unsupported_sample_rate", f"sample_rate {shown(rate)} is not a number of Hz")
    voice = resolve_voice_or_default(services, query.get("model"))
    return SessionSettings(voice, int(rate), fmt, speed_options(services, query))


def speed_options(services: Services, query: QueryParams) -> SynthesisOptions:
    """The synthesis options at the query's `speed` (or SessionError): the WebSocket's and the
    REST endpoint's (deepgram_http.py)."""
    options = services.default_settings().options
    speed = query.get("speed")
    if speed is None:
        return options
    try:
        value = float(speed)
    except ValueError:
        value = float("nan")
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise SessionError("unsupported_speed", f"speed must be a number in [{MIN_SPEED}, {MAX_SPEED}]")
    return at_speed(options, value)


class _Wire:
    """The session's events on Deepgram's wire, all sends serialised. The handshake is accepted
    only once the session has started (its Ready), so a refusal can still be an HTTP answer."""

    def __init__(self, websocket: WebSocket, model: str) -> None:
        self.websocket = websocket
        self.model = model
        self.sequence_id = 0  # counts the Flushed sent: a flush's and a Clear's answers carry it
        self.stale_flushes = 0  # Flushed still to come for text a Clear dropped: not answered
        self.flushes = FlushCounter()
        self._lock = asyncio.Lock()

    async def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, Ready):
            await self.websocket.accept()
            await self._json({"type": "Metadata", "request_id": event.session_id, "model_name": self.model,
                              "model_version": "stream_server", "model_uuid": event.voice})
        elif isinstance(event, Audio):
            async with self._lock:
                await self.websocket.send_bytes(event.pcm)
        elif isinstance(event, Flushed):
            self.flushes.answered(CONTEXT)
            if self.stale_flushes:
                self.stale_flushes -= 1
                return
            await self._json({"type": "Flushed", "sequence_id": self.sequence_id})
            self.sequence_id += 1
        elif isinstance(event, Cancelled):
            self.stale_flushes = self.flushes.pending(CONTEXT)
            await self._json({"type": "Cleared", "sequence_id": self.sequence_id})
        elif isinstance(event, Error):  # a sentence that failed: the session goes on
            await self._json({"type": "Warning", "code": event.code, "description": event.message,
                              "warn_code": event.code, "warn_msg": event.message})

    async def _json(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await self.websocket.send_text(json.dumps(message))

    async def refuse(self, error: SessionError) -> None:
        """Answer a refused session: HTTP before the handshake, else Error + close."""
        ws = self.websocket
        if ws.application_state == WebSocketState.CONNECTING:
            status = 503 if try_again_later(error) else 400
            body = {"err_code": error.code, "err_msg": error.message}
            headers = {"dg-error": error.message.encode("ascii", "replace").decode(), **retry_after_headers(error)}
            try:
                await ws.send_denial_response(JSONResponse(body, status, headers))
                return
            except RuntimeError:  # the server cannot answer a handshake with HTTP: accept, then tell
                await ws.accept()
        await self._json({"type": "Error", "err_code": error.code, "err_msg": error.message,
                          "description": error.message})
        await self.close(ws_close_code(error), close_reason(error.code, error.message))

    async def close(self, code: int, reason: str = "") -> None:
        await close_if_connected(self.websocket, code, reason)


async def deepgram_speak(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    query = websocket.query_params
    wire = _Wire(websocket, query.get("model") or services.config.default_voice)

    async def settings() -> SessionSettings:
        return query_settings(services, query)

    try:
        async with services.open_session("deepgram", settings, wire, wire.close) as session:
            await _receive_loop(websocket, session, wire)
    except SessionError as exc:  # refused, or a bad message: counted by the envelope
        await wire.refuse(exc)
    except (WebSocketDisconnect, RuntimeError):
        pass  # client went away mid-send


async def _receive_loop(websocket: WebSocket, session: Session, wire: _Wire) -> None:
    idle_timeout = websocket.app.state.services.config.session.idle_timeout_seconds
    while True:
        message = await receive_or_idle(websocket, session, idle_timeout)
        if message is None:  # gone quiet: an Error, then close 1000 (counted by the envelope)
            raise idle_error(idle_timeout, KEEPALIVE)
        if message["type"] == "websocket.disconnect":
            return
        msg = parse_message(message.get("text") or message.get("bytes") or b"")
        if isinstance(msg, Speak):
            if msg.text:
                await session.text(msg.text, CONTEXT)
        elif msg.kind == "Flush":
            await wire.flushes.flush(session, CONTEXT)
        elif msg.kind == "Clear":
            await session.cancel(CONTEXT)
        elif msg.kind == "KeepAlive":
            pass  # receiving it restarted the idle timer
        else:  # Close: at once, as Deepgram does
            await wire.close(1000)
            return
