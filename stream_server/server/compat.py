"""What the protocol adapters share, so that each adapter is only its own wire format: voice names,
speed, a session for one HTTP request, an emit that queues for the adapter's own task, closing a
WebSocket and its close reason, and counting a context's flushes. (Refusals' HTTP statuses and
close codes are admission.py's: try_again_later, ws_close_code, retry_after_headers.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..config import SPEAKER_SEPARATOR
from ..engine.requests import SynthesisOptions
from .events import Audio, Done, Error, SentenceEnd, SessionEvent

if TYPE_CHECKING:  # the envelope's types only: services.py and session.py import nothing from here
    from .services import Services
    from .session import Session
    from .session_settings import SessionSettings

MAX_CLOSE_REASON = 123  # bytes a WebSocket close frame's reason may have
T = TypeVar("T")


# --- voices and speed ---------------------------------------------------------------------------
def resolve_voice(services: Services, name: str | None) -> str:
    """Another protocol's voice name -> ours (config `voice_aliases`); None -> the default voice.
    An unknown name is passed through, so the session rejects it with `unknown_voice`."""
    if not name:
        return services.config.default_voice
    return services.config.voice_aliases.get(name, name)


def resolve_voice_or_default(services: Services, name: str | None) -> str:
    """Like resolve_voice, but a name that is neither an alias nor a voice means the default voice:
    for protocols whose clients always send the provider's own model names (Deepgram's `model`)."""
    voice = resolve_voice(services, name)
    base = voice.partition(SPEAKER_SEPARATOR)[0]  # "<voice>#<speaker>" is that voice
    return voice if base in services.voice_rates else services.config.default_voice


def at_speed(defaults: SynthesisOptions, speed: float) -> SynthesisOptions:
    """Synthesis options at a protocol's `speed`: length_scale = the defaults' length_scale / speed
    (always from the defaults: speeds do not compound). Each protocol checks its own range."""
    return replace(defaults, length_scale=defaults.length_scale / speed)


# --- sessions for HTTP requests -------------------------------------------------------------------
class EventQueue:
    """A session's `emit` that queues the events for an adapter to consume in its own task.

    Bounded: when the consumer is slow (its client does not read), the session's pump waits as it
    would on a socket, which is what its stall guard watches (flow.py); the queue is a hop, not a
    measure of how far the client is behind. `force` never waits (a shutdown notice)."""

    def __init__(self, maxsize: int = 64) -> None:
        self.queue: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self.maxsize = maxsize
        self._room = asyncio.Event()
        self._room.set()

    async def __call__(self, event: SessionEvent) -> None:
        while self.queue.qsize() >= self.maxsize:
            self._room.clear()
            await self._room.wait()
        self.queue.put_nowait(event)

    def force(self, event: SessionEvent) -> None:
        self.queue.put_nowait(event)

    async def get(self) -> SessionEvent:
        event = await self.queue.get()
        if self.queue.qsize() < self.maxsize:
            self._room.set()
        return event


async def open_for_request(
    services: Services, protocol: str, settings: SessionSettings, events: EventQueue,
    feed: Callable[[Session], Awaitable[None]], **log_fields: object,
) -> tuple[Session, contextlib.AsyncExitStack]:
    """The session of one HTTP request with all its text in (`feed`, then end). It lives until the
    stack is closed (when the response body ends), so the envelope's exit runs after the last
    byte. A refusal is the envelope's SessionError (counted there)."""

    async def cut_short(code: int) -> None:  # server shutdown after the grace period: never waits
        events.force(Error("shutting_down", "the server is shutting down"))

    stack = contextlib.AsyncExitStack()
    try:
        session = await stack.enter_async_context(
            services.open_session(protocol, settings, events, cut_short, **log_fields)
        )
        session.whole_text = True  # a sentence too expensive to speak refuses the request (400)
        await feed(session)
        await session.end()
    except BaseException as exc:  # the envelope sees it (counts a SessionError), then closes
        if not await stack.__aexit__(type(exc), exc, exc.__traceback__):
            raise
    return session, stack


def text_feed(services: Services, text: str) -> Callable[[Session], Awaitable[None]]:
    """open_for_request's `feed` for a request's whole text, in pieces the session's per-message
    limit (session.max_text_chars) takes."""

    async def feed(session: Session) -> None:
        piece = services.config.session.max_text_chars
        for i in range(0, len(text), piece):
            await session.text(text[i : i + piece])

    return feed


async def collect_unless_gone(request: Request, items: AsyncGenerator[T, None]) -> list[T] | None:
    """All the items, or None as soon as the client is gone (the session closes with the
    generator): for answers that go out whole."""

    async def gather() -> list[T]:
        return [item async for item in items]

    task = asyncio.ensure_future(gather())
    while not task.done():
        await asyncio.wait({task}, timeout=0.25)
        if not task.done() and await request.is_disconnected():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await items.aclose()
            return None
    return task.result()


async def request_pcm(
    events: EventQueue, stack: contextlib.AsyncExitStack, gap: bytes = b""
) -> AsyncGenerator[bytes, None]:
    """The session's audio as it comes (and `gap` after each sentence); a failed sentence ends it
    with RuntimeError. Closing the iterator closes the session."""
    async with stack:
        while True:
            event = await events.get()
            if isinstance(event, Audio):
                yield event.pcm
            elif isinstance(event, SentenceEnd) and gap:
                yield gap
            elif isinstance(event, Error):
                raise RuntimeError(f"{event.code}: {event.message}")
            elif isinstance(event, Done):
                return


async def once(body: bytes) -> AsyncIterator[bytes]:
    """A whole body as a stream of one chunk."""
    yield body


async def after(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`first` (a header), then the rest."""
    yield first
    async for chunk in rest:
        yield chunk


# --- WebSockets ------------------------------------------------------------------------------------
async def close_if_connected(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close the socket unless it is closed already (or the client left meanwhile)."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    try:
        await websocket.close(code, reason)
    except (RuntimeError, WebSocketDisconnect):
        pass


def close_reason(code: str, message: str) -> str:
    """"<code>: <message>", cut to what a close frame carries (whole characters only)."""
    return f"{code}: {message}".encode()[:MAX_CLOSE_REASON].decode(errors="ignore")


class FlushCounter:
    """Flushes a client asked for whose Flushed has not come yet, per context: so an adapter knows
    when a context's last flush is answered (ElevenLabs' isFinal after close_context) or that a
    Flushed answers text a clear dropped (Deepgram's Clear)."""

    def __init__(self) -> None:
        self._pending: dict[str, int] = {}

    def pending(self, context_id: str) -> int:
        return self._pending.get(context_id, 0)

    def answered(self, context_id: str) -> int:
        """A Flushed came: how many are still to come for the context."""
        left = self.pending(context_id) - 1
        if left > 0:
            self._pending[context_id] = left
        else:
            self._pending.pop(context_id, None)
        return max(0, left)

    async def flush(self, session: Session, context_id: str) -> None:
        """Ask the session to flush the context; a refused flush (SessionError) is not counted."""
        self._pending[context_id] = self.pending(context_id) + 1
        try:
            await session.flush(context_id)
        except BaseException:
            self.answered(context_id)  # no Flushed will come for it
            raise
