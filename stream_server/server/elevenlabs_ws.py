"""ElevenLabs-compatible `stream-input` WebSocket at /v1/text-to-speech/{voice_id}/stream-input:
a thin adapter onto Session (docs/elevenlabs.md).

One socket = one session with one context. Each engine chunk goes out as it is synthesized:
`{"audio": base64, "isFinal": null, "alignment": {...}, "normalizedAlignment": {...}}`, the
alignment holding the characters that start in that chunk (elevenlabs_audio.py, alignment.py).
`{"text": ""}` ends the input; the server sends the remaining audio, `{"isFinal": true}`, and closes.
A refusal is an error message, then a close whose reason says why (the SDK shows only the reason).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from .admission import ws_close_code
from .compat import EventQueue, at_speed, close_if_connected, close_reason, resolve_voice
from .elevenlabs_audio import AudioMessages
from .elevenlabs_formats import OutputFormat, output_format
from .events import Audio, Done, Error, Flushed, SentenceEnd, SentenceStart, SessionError, Words, shown
from .idle import first_message, idle_error, receive_or_idle
from .send_stall import close_stalled
from .services import Services
from .session import Session
from .session_settings import SessionSettings
from .wire import loads_json

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_FORMAT = "pcm_22050"  # the voice's native rate (ElevenLabs' own default is mp3)
KEEPALIVE = '{"text": " "}'  # what ElevenLabs' clients send to keep a quiet socket open
MIN_SPEED, MAX_SPEED = 0.7, 1.2  # ElevenLabs' range for voice_settings.speed


def parse_output_format(fmt: str) -> tuple[int, bool]:
    """`pcm_<rate>`, `ulaw_8000` or `mp3_<rate>_<kbps>` -> (sample rate, mu-law?); for the codec
    (mp3 too) use elevenlabs_audio.output_format."""
    parsed = output_format(fmt)
    return parsed.sample_rate, parsed.codec == "ulaw"


class ElevenLabsSocket:
    """All sends on the socket, serialised (both ElevenLabs adapters)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await self.websocket.send_text(json.dumps(message))

    async def error(
        self, code: str, message: str, context_id: str | None = None, close_code: int = 1008,
        retry_after: float | None = None,
    ) -> None:
        reply = {"message": message, "error": code, "code": close_code}
        if context_id is not None:  # multi-stream-input: the context it is about
            reply["contextId"] = context_id
        if retry_after is not None:  # overloaded: when to try again
            reply["retry_after"] = retry_after
        await self.send(reply)

    async def refuse(self, error: SessionError) -> None:
        """A refused session (or a malformed message): say why, then close with the reason too
        (the SDK reports the close reason; LiveKit logs the error message)."""
        code = ws_close_code(error)
        await self.error(error.code, error.message, close_code=code, retry_after=error.retry_after)
        await self.close(code, close_reason(error.code, error.message))

    async def close(self, code: int, reason: str = "") -> None:
        if code == 1001 and not reason:  # the session's shutdown closes without one
            reason = "shutting_down: the server is shutting down"
        await close_if_connected(self.websocket, code, reason)


async def elevenlabs_stream(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    await websocket.accept()
    sock = ElevenLabsSocket(websocket)
    events = EventQueue()
    first: dict[str, Any] = {}  # the first message: it carries the voice settings and maybe text
    fmt = OutputFormat(0, "pcm")

    async def settings() -> SessionSettings:
        nonlocal fmt
        fmt = output_format(websocket.query_params.get("output_format", DEFAULT_OUTPUT_FORMAT))
        voice = resolve_voice(services, websocket.path_params["voice_id"])
        if voice not in services.voice_rates:  # answered at once, before the first message
            raise SessionError("unknown_voice", f"unknown voice {shown(voice)}; see GET /v1/audio/voices")
        raw = await first_message(websocket, services.config.session.idle_timeout_seconds, KEEPALIVE)
        if raw["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(1000)
        message = parse_message(raw.get("text") or raw.get("bytes") or b"")
        first.update(message)
        return _settings(services, voice, fmt.sample_rate, message)

    try:
        async with services.open_session("elevenlabs", settings, events, sock.close) as session:
            sender = asyncio.create_task(_send_loop(sock, session, events, AudioMessages(fmt)))
            try:
                await _receive_loop(websocket, session, first, sender)
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)  # retrieve its end, whatever it was
    except SessionError as exc:
        await sock.refuse(exc)
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _receive_loop(
    websocket: WebSocket, session: Session, first: dict[str, Any], sender: asyncio.Task[None]
) -> None:
    idle_timeout = websocket.app.state.services.config.session.idle_timeout_seconds
    msg: dict[str, Any] | None = first
    while True:
        if msg is None:
            msg = await _receive(websocket, session, idle_timeout)
            if msg is None:
                return
        if msg.get("text") == "":
            await session.end()
            await sender  # sends the rest, then isFinal, then closes
            if session.stalled.is_set():  # unless the client stopped reading
                await close_stalled(websocket)
            return
        await _text(session, msg)
        msg = None


async def _receive(websocket: WebSocket, session: Session, idle_timeout: float) -> dict[str, Any] | None:
    """The next JSON message (None: the client went away, or stopped reading and was closed;
    idle_error once the session has gone quiet: idle.py)."""
    message = await receive_or_idle(websocket, session, idle_timeout)
    if message is None:
        raise idle_error(idle_timeout, KEEPALIVE)
    if message["type"] == "websocket.disconnect":
        return None
    return parse_message(message.get("text") or message.get("bytes") or b"")


def parse_message(raw: str | bytes) -> dict[str, Any]:
    """A client message: a JSON object with a string "text" (or SessionError)."""
    try:
        data = loads_json(raw)
    except ValueError:
        raise SessionError("invalid_json", "messages must be JSON text") from None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise SessionError("invalid_message", 'a message must be an object with a string "text"')
    return data


def voice_speed(message: dict[str, Any]) -> float | None:
    """`voice_settings.speed` of a message (None: not given), checked against ElevenLabs' range."""
    voice_settings = message.get("voice_settings") or {}
    if not isinstance(voice_settings, dict):
        raise SessionError("invalid_message", "voice_settings must be an object")
    speed = voice_settings.get("speed")
    if speed is None:
        return None
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise SessionError(
            "invalid_voice_settings", f"voice_settings.speed must be in [{MIN_SPEED}, {MAX_SPEED}]"
        )
    return float(speed)


def _settings(services: Services, voice: str, rate: int, first: dict[str, Any]) -> SessionSettings:
    options = services.default_settings().options
    speed = voice_speed(first)
    return SessionSettings(voice, rate, "pcm_s16le", options if speed is None else at_speed(options, speed))


async def _text(session: Session, msg: dict[str, Any]) -> None:
    text = msg["text"]
    if text.strip():
        await session.text(text)
    if msg.get("flush") is True:
        await session.flush()


async def _send_loop(sock: ElevenLabsSocket, session: Session, events: EventQueue, out: AudioMessages) -> None:
    """A message per chunk (audio + the alignment of its characters), then isFinal, then close;
    nothing more once a send stalls (the receive loop then closes the socket)."""
    while True:
        event = await events.get()
        message: dict[str, Any] | None = None
        if isinstance(event, SentenceStart):
            out.start(event)
        elif isinstance(event, Words):
            out.words(event)
        elif isinstance(event, Audio):
            message = out.audio(event)
        elif isinstance(event, SentenceEnd):
            message = out.end(event)
        elif isinstance(event, Flushed):
            message = out.tail(event.context_id)  # what was flushed is all heard now
        elif isinstance(event, Error):
            if not await session.guard(sock.error(event.code, event.message, retry_after=event.retry_after)):
                return
        elif isinstance(event, Done):
            await _finish(sock, session, out)
            return
        if message is not None and not await session.guard(sock.send(message)):
            return


async def _finish(sock: ElevenLabsSocket, session: Session, out: AudioMessages) -> None:
    """The last mp3 frames, isFinal, close."""
    tail = out.tail("default")
    if tail is not None and not await session.guard(sock.send(tail)):
        return
    if await session.guard(sock.send({"isFinal": True})):
        await sock.close(1000)
