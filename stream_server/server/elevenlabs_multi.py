"""ElevenLabs-compatible `multi-stream-input` WebSocket at
/v1/text-to-speech/{voice_id}/multi-stream-input: a thin adapter onto Session (docs/elevenlabs.md).

One socket = one session; each ElevenLabs context is a session context (at most
`session.max_contexts` open at once). Each engine chunk goes out as one message,
`{"audio", "isFinal": null, "alignment", "normalizedAlignment", "contextId"}` (elevenlabs_audio.py), and
`{"isFinal": true, "contextId"}` ends a context. `close_context` ends a context in one of two ways,
the two ways Pipecat and LiveKit use it: after a `flush` (the normal end of a turn: they send flush
then close_context and wait for the rest of the audio) the flushed audio still comes, then isFinal;
without a flush since the context's last close, or a second time (a barge-in), the context is
cancelled at once and isFinal follows with no more of its audio. With `auto_mode=true` (Pipecat's
default) each text message is a whole sentence or phrase, so it is spoken at once, as if flushed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..config import SessionSection
from .compat import FlushCounter, at_speed, resolve_voice
from .contexts import check_context_id
from .elevenlabs_audio import AudioMessages
from .elevenlabs_formats import OutputFormat, output_format
from .elevenlabs_ws import DEFAULT_OUTPUT_FORMAT, KEEPALIVE, ElevenLabsSocket, voice_speed
from .events import Audio, Cancelled, Error, Flushed, SentenceEnd, SentenceStart, SessionError, SessionEvent, Words
from .idle import idle_error, receive_or_idle
from .services import Services
from .session import Session
from .session_settings import SessionSettings
from .wire import loads_json

DEFAULT_CONTEXT = "default"  # a message without context_id
MAX_CONTEXT_ID = SessionSection().max_context_id_chars  # ids are uuids or shorter in practice
# Errors of one context: reported with its contextId, the socket stays open (the others go on).
# Refusals of one context's text: reported with its contextId, the socket goes on.
_CONTEXT_ERRORS = ("too_many_contexts", "too_much_pending", "too_many_queued_sentences", "overloaded")


@dataclass(frozen=True)
class MultiMessage:
    context_id: str
    text: str | None = None  # "" or " ": a keep-alive or a context's opening message, nothing to say
    speed: float | None = None  # voice_settings.speed (a context's first message carries them)
    flush: bool = False
    close_context: bool = False
    close_socket: bool = False


def parse_multi_message(raw: str | bytes, max_context_id: int = MAX_CONTEXT_ID) -> MultiMessage:
    """A client message (or SessionError)."""
    try:
        data = loads_json(raw)
    except ValueError:
        raise SessionError("invalid_json", "messages must be JSON text") from None
    if not isinstance(data, dict):
        raise SessionError("invalid_message", "a message must be a JSON object")
    context_id = check_context_id(data.get("context_id", DEFAULT_CONTEXT), max_context_id)
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise SessionError("invalid_message", '"text" must be a string')
    flags = {}
    for name in ("flush", "close_context", "close_socket"):
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise SessionError("invalid_message", f'"{name}" must be true or false')
        flags[name] = value
    if text is None and not any(flags.values()):
        raise SessionError("invalid_message", 'a message needs "text", "flush", "close_context" or "close_socket"')
    return MultiMessage(context_id, text, voice_speed(data), **flags)


class _Wire(ElevenLabsSocket):
    """The session's events on the wire, all sends serialised; and which contexts are on their way
    to their isFinal. Everything kept per context is bounded: `flushed` holds only contexts the
    session still knows (see prune), `closing` and `flushes` only contexts with a Flushed to come."""

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(websocket)
        self.session: Session | None = None  # set once it is open (its events come after)
        self.out = AudioMessages(OutputFormat(0, "pcm"))  # in the output format, once the settings are read
        self.flushed: set[str] = set()  # a flush since the context's last close: close is graceful
        self.closing: set[str] = set()  # gracefully closing: isFinal after its last Flushed
        self.flushes = FlushCounter()  # Flushed still to come, per context

    def prune(self) -> None:
        """Forget the flushes of contexts the session has forgotten (a client may use any number
        of context ids); closing such a context later cancels it, which sends the same isFinal."""
        if self.session is not None:
            self.flushed = {c for c in self.flushed if self.session.knows(c)}

    async def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, SentenceStart):
            self.out.start(event)
        elif isinstance(event, Words):
            self.out.words(event)
        elif isinstance(event, Audio):
            await self._send_audio(event.context_id, self.out.audio(event))
        elif isinstance(event, SentenceEnd):
            await self._send_audio(event.context_id, self.out.end(event))
        elif isinstance(event, Flushed):
            await self._send_audio(event.context_id, self.out.tail(event.context_id))
            if self.flushes.answered(event.context_id) == 0 and event.context_id in self.closing:
                await self._final(event.context_id)
        elif isinstance(event, Cancelled):
            self.out.drop(event.context_id)  # its audio so far is dropped with it
            await self._final(event.context_id)
        elif isinstance(event, Error):
            await self.error(event.code, event.message, event.context_id, retry_after=event.retry_after)

    async def _send_audio(self, context_id: str, message: dict[str, Any] | None) -> None:
        if message is not None:
            await self.send({**message, "contextId": context_id})

    async def _final(self, context_id: str) -> None:
        """The context is over (a reused id starts a new turn) and the client is told so."""
        self.closing.discard(context_id)
        self.flushed.discard(context_id)
        await self.send({"isFinal": True, "contextId": context_id})


async def elevenlabs_multi_stream(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    await websocket.accept()
    wire = _Wire(websocket)

    async def settings() -> SessionSettings:
        fmt = output_format(websocket.query_params.get("output_format", DEFAULT_OUTPUT_FORMAT))
        wire.out = AudioMessages(fmt)  # known before the session starts, so before any of its events
        voice = resolve_voice(services, websocket.path_params["voice_id"])
        return SessionSettings(voice, fmt.sample_rate, "pcm_s16le", services.default_settings().options)

    try:
        async with services.open_session("elevenlabs_multi", settings, wire, wire.close) as session:
            await _receive_loop(websocket, session, wire)
    except SessionError as exc:  # refused, or a malformed message: counted by the envelope
        await wire.refuse(exc)
    except (WebSocketDisconnect, RuntimeError):
        pass  # client went away mid-send


async def _receive_loop(websocket: WebSocket, session: Session, wire: _Wire) -> None:
    defaults = session.settings.options
    auto_mode = websocket.query_params.get("auto_mode") == "true"
    config = websocket.app.state.services.config.session
    max_context_id, idle_timeout = config.max_context_id_chars, config.idle_timeout_seconds
    wire.session = session
    while True:
        message = await receive_or_idle(websocket, session, idle_timeout)
        if message is None:  # gone quiet: an error, then close 1000 (counted by the envelope)
            raise idle_error(idle_timeout, KEEPALIVE)
        if message["type"] == "websocket.disconnect":
            return
        msg = parse_multi_message(message.get("text") or message.get("bytes") or b"", max_context_id)
        if msg.close_socket:
            await wire.close(1000)
            return
        ctx = msg.context_id
        if msg.speed is not None:
            session.set_context_options(ctx, at_speed(defaults, msg.speed))
        try:
            if msg.text and msg.text.strip():
                await session.text(msg.text, ctx)
                if auto_mode and not msg.flush:
                    await wire.flushes.flush(session, ctx)  # not a client flush: close_context still cancels
            if msg.flush:
                wire.prune()
                wire.flushed.add(ctx)
                await wire.flushes.flush(session, ctx)
        except SessionError as exc:
            if exc.code not in _CONTEXT_ERRORS:
                raise  # malformed: the socket closes
            await session.report(exc, ctx)  # that context's text is dropped, the others go on
        if msg.close_context:
            await _close_context(session, wire, ctx)


async def _close_context(session: Session, wire: _Wire, ctx: str) -> None:
    if ctx in wire.flushed and ctx not in wire.closing:  # a turn's end: the rest of its audio, then isFinal
        wire.closing.add(ctx)
        try:
            await wire.flushes.flush(session, ctx)
            return
        except SessionError:  # the backlog is full: end it at once instead
            wire.closing.discard(ctx)
    await session.cancel(ctx)  # barge-in: nothing more of it
