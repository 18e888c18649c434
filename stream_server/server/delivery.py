"""The one task that sends a session's output to its client, strictly in order: each sentence's
sentence_start, words, audio and sentence_end, never interleaved with another sentence, and the
markers (flushed, done) where they were asked for. A sentence's audio is resampled and encoded here
as it goes out (audio/formats.py), and its word times taken from its timing event."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..audio.formats import SentenceEncoder
from ..engine.requests import AudioEvent, ErrorEvent, TimingEvent
from .contexts import Ticket
from .events import Audio, Done, Error, SentenceEnd, SentenceStart, SessionEvent, Words
from .flow import FlowControl
from .word_times import word_times

log = logging.getLogger(__name__)

Send = Callable[[SessionEvent], Awaitable[bool]]  # False: the client stalled, nothing was sent

_DISCONNECTS = {"WebSocketDisconnect", "ConnectionClosed"}  # Starlette's; the websockets package's


def is_disconnect(exc: BaseException) -> bool:
    """The client left: a reset or closed transport (OSError, uvicorn's ClientDisconnected among
    them), or a WebSocket library's disconnect, named here since a session imports no wire."""
    return isinstance(exc, OSError) or any(c.__name__ in _DISCONNECTS for c in type(exc).__mro__)


def _note_end(task: asyncio.Task[None]) -> None:
    """Retrieve how the pump ended, so a client that left mid-send (its send raised) is not
    reported as "Task exception was never retrieved"; anything else is a server fault."""
    if task.cancelled() or task.exception() is None:
        return
    exc = task.exception()
    if exc is not None and is_disconnect(exc):
        log.debug("event=pump_end task=%s client gone: %r", task.get_name(), exc)
    else:
        log.error("event=pump_failed task=%s", task.get_name(), exc_info=exc)


@dataclass(frozen=True)
class Marker:
    event: SessionEvent


class Delivery:
    def __init__(
        self, name: str, send: Send, flow: FlowControl, rate_of: Callable[[str], int],
        on_first_audio: Callable[[float], None],
    ) -> None:
        self._name = name
        self._send = send
        self._flow = flow
        self._rate_of = rate_of  # a voice's native sample rate
        self._on_first_audio = on_first_audio
        self._outbox: asyncio.Queue[Ticket | Marker] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name=self._name)
        self._task.add_done_callback(_note_end)

    async def wait_done(self) -> None:
        if self._task is not None:
            await self._task

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def queue(self, ticket: Ticket) -> None:
        self._outbox.put_nowait(ticket)

    def queue_marker(self, event: SessionEvent) -> None:
        self._flow.marker_queued()
        self._outbox.put_nowait(Marker(event))

    def drop_queued(self) -> None:
        """Nothing queued will be sent (the client stalled); the pump wakes and sees the stall."""
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self._flow.markers_dropped()
        self._outbox.put_nowait(Marker(Done()))

    async def _pump(self) -> None:
        flow = self._flow
        while not flow.stalled.is_set():
            item = await self._outbox.get()
            if flow.stalled.is_set():
                return
            if isinstance(item, Marker):
                await self._send(item.event)
                flow.marker_sent()
                if isinstance(item.event, Done):
                    return
            elif not item.cancelled:
                try:
                    await self._send_sentence(item)
                finally:
                    item.done = True
                    flow.release(item)
            else:
                item.done = True
                flow.release(item)
            flow.item_done()

    async def _send_sentence(self, ticket: Ticket) -> None:
        rate = self._rate_of(ticket.request.voice)
        out = ticket.output
        encoder = SentenceEncoder(rate, out.sample_rate, out.format)
        ctx = ticket.context
        started = False
        timing: TimingEvent | None = None
        while True:
            event = await ticket.events.get()
            if ticket.cancelled or event is None:
                return
            if isinstance(event, ErrorEvent):
                await self._send(Error(event.code, event.message, ticket.context_id))
                return
            if isinstance(event, TimingEvent):
                timing = event
                continue
            assert isinstance(event, AudioEvent)
            if not started:
                if not await self._start_sentence(ticket, timing):
                    return
                started = True
            if not await self._send_audio(ticket, encoder, event):
                return
            self._flow.sent(ticket, len(event.pcm) / rate)
            if event.last:
                ctx.audio_seconds += encoder.samples / out.sample_rate
                await self._send(SentenceEnd(ticket.context_id, ticket.index, encoder.samples, event.cached))
                return

    async def _start_sentence(self, ticket: Ticket, timing: TimingEvent | None) -> bool:
        """sentence_start, then its words (on its context's clock) when the voice timed them."""
        if not await self._send(SentenceStart(ticket.context_id, ticket.index, ticket.text)):
            return False
        if timing is None:
            return True
        words = word_times(ticket.text, timing)
        return await self._send(Words(ticket.context_id, ticket.index, words, ticket.context.audio_seconds))

    async def _send_audio(self, ticket: Ticket, encoder: SentenceEncoder, event: AudioEvent) -> bool:
        """The chunk at the client's rate and format (False: cancelled meanwhile, or stalled)."""
        pcm = encoder.encode(event.pcm, event.last)
        if ticket.cancelled:
            return False
        if not pcm:
            return True
        if ticket.first_audio_at is None:
            ticket.first_audio_at = time.monotonic()
            self._on_first_audio(ticket.first_audio_at - ticket.created_at)
        return await self._send(Audio(ticket.context_id, ticket.index, pcm, event.last))
