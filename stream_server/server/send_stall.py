"""A client that stops reading: its sends stall, and after `session.send_stall_timeout_seconds`
without progress its session is over (docs/limits.md).

Every send to a client goes through its session's StallGuard. A send that does not complete within
the timeout (the socket's buffers are full and the client reads nothing) marks the session stalled:
the session drops its engine work at once (slots and queued sentences go to the others) and sends
nothing more; the adapter then closes the connection with STALL_CLOSE_CODE. The close frame queues
behind the audio the client has not read, so it is waited for only CLOSE_GRACE_SECONDS; after that
the server lets the connection go without it (the client then sees the TCP connection end, 1006).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import overload

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from .compat import close_if_connected

log = logging.getLogger(__name__)

STALL_CLOSE_CODE = 4408  # an application code (4000-4999), after HTTP's 408 Request Timeout
STALL_REASON = "client stopped reading audio"
CLOSE_GRACE_SECONDS = 5.0  # how long the close frame may wait behind unread audio


class SendStalled(Exception):
    """A streamed HTTP response whose client stopped reading (ends the response)."""


def _discard(send: Awaitable[None]) -> None:
    close = getattr(send, "close", None)  # a coroutine never awaited: no warning for it
    if close is not None:
        close()


@dataclass
class StallGuard:
    """Awaits a session's sends; one that makes no progress for `timeout` seconds stalls the
    session (`on_stall` runs once) and every later send is dropped."""

    timeout: float  # seconds; <= 0: never
    on_stall: Callable[[], None] = lambda: None
    stalled: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, send: Awaitable[None]) -> bool:
        """True once the send completed; False (nothing sent) when the session is stalled."""
        if self.stalled.is_set():
            _discard(send)
            return False
        if self.timeout <= 0:
            await send
            return True
        try:
            async with asyncio.timeout(self.timeout):
                await send
        except TimeoutError:
            self.stall()
            return False
        return True

    def stall(self) -> None:
        if not self.stalled.is_set():
            self.stalled.set()
            self.on_stall()


@overload
async def receive_unless_stalled(websocket: WebSocket, stalled: asyncio.Event, timeout: None = None) -> Message: ...
@overload
async def receive_unless_stalled(websocket: WebSocket, stalled: asyncio.Event, timeout: float) -> Message | None: ...
async def receive_unless_stalled(
    websocket: WebSocket, stalled: asyncio.Event, timeout: float | None = None
) -> Message | None:
    """The client's next message (None: none within `timeout`). If the session stalls first, the
    client is closed with STALL_CLOSE_CODE and a disconnect message is returned, so a receive loop
    ends as if the client had left. (Not to be cancelled by a caller's timeout: that could cut the
    close short; pass `timeout` instead.)"""
    if stalled.is_set():
        return await _close_stalled(websocket)
    receiving = asyncio.ensure_future(websocket.receive())
    watching = asyncio.ensure_future(stalled.wait())
    try:
        await asyncio.wait({receiving, watching}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        if not receiving.done():
            receiving.cancel()
    if receiving.done() and not receiving.cancelled():
        return receiving.result()
    return await _close_stalled(websocket) if stalled.is_set() else None


async def _close_stalled(websocket: WebSocket) -> Message:
    await close_stalled(websocket)
    return {"type": "websocket.disconnect", "code": STALL_CLOSE_CODE}


async def close_stalled(websocket: WebSocket) -> None:
    """Close with STALL_CLOSE_CODE, waiting at most CLOSE_GRACE_SECONDS for the frame to go."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_GRACE_SECONDS):
            await close_if_connected(websocket, STALL_CLOSE_CODE, STALL_REASON)


class GuardedStreamingResponse(StreamingResponse):
    """A streamed HTTP response whose sends go through the session's StallGuard: a client that
    stops reading has its response cut (an HTTP body cannot carry a close code; the chunked body
    ends unfinished) and its session ended, instead of holding both until it disconnects."""

    def __init__(self, content: AsyncIterable[bytes], guard: StallGuard, media_type: str) -> None:
        super().__init__(content, media_type=media_type)
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def guarded(message: Message) -> None:
            if not await self.guard(send(message)):
                raise SendStalled

        try:
            await super().__call__(scope, receive, guarded)
        except SendStalled:
            log.info("event=response_cut reason=%r", STALL_REASON)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:  # ends the session's envelope now, not when collected
                await close()
