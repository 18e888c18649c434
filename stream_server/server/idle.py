"""A session whose client has gone quiet is closed: no client message, and nothing sent or left to
send, for `session.idle_timeout_seconds` (60 s; 0: never). Every protocol that holds a session
between requests has it (native, Deepgram, ElevenLabs stream-input and multi-stream-input over
WebSockets; Wyoming's streaming runs), so silent sessions cannot fill `admission.max_sessions`;
any message keeps a session open (each protocol names its keep-alive in the error), and audio
still being sent is never cut (docs/limits.md)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from starlette.types import Message
from starlette.websockets import WebSocket

from .events import SessionError
from .send_stall import receive_unless_stalled

if TYPE_CHECKING:
    from .session import Session

IDLE_TIMEOUT = "idle_timeout"


def idle_error(idle_timeout: float, keepalive: str) -> SessionError:
    """The error a session closed for silence gets; `keepalive`: what keeps it open."""
    return SessionError(
        IDLE_TIMEOUT,
        f"no message for {idle_timeout:g} s and nothing to send; send {keepalive} to keep an idle session open",
    )


def idle_for(session: Session, last_message: float, idle_timeout: float) -> float:
    """Seconds until the session counts as gone quiet (<= 0: it has, unless it still sends)."""
    return max(last_message, session.last_output_at) + idle_timeout - time.monotonic()


async def receive_or_idle(websocket: WebSocket, session: Session, idle_timeout: float) -> Message | None:
    """The client's next message; None once the session has gone quiet (no client message for
    `idle_timeout` seconds and nothing sent or left to send for as long; 0: never). A session whose
    client stopped reading is closed (4408) and ends here as a disconnect (send_stall.py)."""
    if idle_timeout <= 0:
        return await receive_unless_stalled(websocket, session.stalled)
    last_message = time.monotonic()
    while True:
        wait = idle_for(session, last_message, idle_timeout)
        if wait <= 0:
            if session.is_idle() and not session.stalled.is_set():  # stalled: closed below, 4408
                return None
            wait = min(idle_timeout, 0.25)  # still sending: look again shortly
        message = await receive_unless_stalled(websocket, session.stalled, wait)
        if message is not None:
            return message


async def first_message(websocket: WebSocket, idle_timeout: float, keepalive: str) -> Message:
    """A message read before the session exists (one that carries its settings): within
    `idle_timeout` too, else idle_error."""
    message = await receive_unless_stalled(websocket, asyncio.Event(), idle_timeout if idle_timeout > 0 else None)
    if message is None:
        raise idle_error(idle_timeout, keepalive)
    return message
