"""Native WebSocket protocol at /v1/tts/stream: a thin adapter onto Session (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..engine.requests import SynthesisOptions
from .admission import ws_close_code
from .compat import at_speed, close_if_connected
from .events import Error, SessionError, SessionEvent, shown
from .idle import idle_error, receive_or_idle
from .native_messages import (
    CancelMessage,
    ClientMessage,
    ConfigMessage,
    EndMessage,
    FlushMessage,
    KeepaliveMessage,
    TextMessage,
    parse_client_frame,
    parse_speed,
    serialise_event,
)
from .send_stall import close_stalled
from .services import Services
from .session import Session
from .session_settings import SessionSettings

log = logging.getLogger(__name__)


class _Sender:
    """Serialises all sends on one socket (FIFO lock: a frame queued before a `cancelled`
    reply goes out before it, none after)."""

    def __init__(self, websocket: WebSocket, msgpack_mode: bool) -> None:
        self.websocket = websocket
        self.msgpack_mode = msgpack_mode
        self._lock = asyncio.Lock()

    async def __call__(self, event: SessionEvent) -> None:
        frame = serialise_event(event, self.msgpack_mode)
        async with self._lock:
            if isinstance(frame, bytes):
                await self.websocket.send_bytes(frame)
            else:
                await self.websocket.send_text(frame)


async def _query_settings(websocket: WebSocket, defaults: SessionSettings) -> SessionSettings:
    q = websocket.query_params
    encoding = q.get("encoding", "json")
    if encoding not in ("json", "msgpack"):
        raise SessionError("invalid_encoding", f"encoding {shown(encoding)}: use json or msgpack")
    rate = q.get("sample_rate")
    try:
        sample_rate = int(rate) if rate is not None else defaults.sample_rate
    except ValueError:
        raise SessionError("unsupported_sample_rate", f"sample_rate {shown(rate)} is not a number") from None
    speed = q.get("speed")
    return SessionSettings(
        voice=q.get("voice", defaults.voice),
        sample_rate=sample_rate,
        format=q.get("format", defaults.format),
        options=defaults.options if speed is None else at_speed(defaults.options, parse_speed(speed)),
    )


async def native_stream(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    encoding = websocket.query_params.get("encoding", "json")
    await websocket.accept()
    send = _Sender(websocket, encoding == "msgpack")
    defaults = services.default_settings()
    settings = partial(_query_settings, websocket, defaults)
    close = partial(close_if_connected, websocket)
    try:
        async with services.open_session("native", settings, send, close) as session:
            idle_timeout = services.config.session.idle_timeout_seconds
            await _receive_loop(websocket, session, send, idle_timeout, defaults.options)
    except SessionError as exc:  # refused (shutting down, overloaded, bad voice, format or encoding)
        await send(Error(exc.code, exc.message, retry_after=exc.retry_after))
        await close_if_connected(websocket, ws_close_code(exc))
    except (WebSocketDisconnect, RuntimeError):
        pass  # client went away mid-send


async def _receive_loop(
    websocket: WebSocket, session: Session, send: _Sender, idle_timeout: float, defaults: SynthesisOptions
) -> None:
    while True:
        message = await receive_or_idle(websocket, session, idle_timeout)
        if message is None:  # gone quiet (idle.py)
            await session.report(idle_error(idle_timeout, '{"type": "keepalive"}'))
            await close_if_connected(websocket, 1000)
            return
        if message["type"] == "websocket.disconnect":
            return
        frame = message.get("text")
        if frame is None:
            frame = message.get("bytes") or b""
        try:
            msg = parse_client_frame(frame, send.msgpack_mode)
            if isinstance(msg, EndMessage):
                await session.end()
                await session.wait_done()
                if session.stalled.is_set():
                    await close_stalled(websocket)
                else:
                    await close_if_connected(websocket, 1000)
                return
            await _dispatch(session, msg, defaults)
        except SessionError as exc:
            await session.report(exc)


async def _dispatch(session: Session, msg: ClientMessage, defaults: SynthesisOptions) -> None:
    if isinstance(msg, KeepaliveMessage):
        return  # receiving it restarted the idle timer
    if isinstance(msg, TextMessage):
        await session.text(msg.text, msg.context_id)
    elif isinstance(msg, FlushMessage):
        await session.flush(msg.context_id)
    elif isinstance(msg, CancelMessage):
        await session.cancel(msg.context_id)
    elif isinstance(msg, ConfigMessage):
        options = None if msg.speed is None else at_speed(defaults, parse_speed(msg.speed))
        await session.configure(msg.voice, msg.sample_rate, msg.format, options)
