"""The event loop's side of the engine: submit sentences with a sink, get their events on the loop.

The engine thread publishes each step's events in one batch; the batch crosses onto the loop once
(call_soon_threadsafe) and each event goes straight to its request's sink, on the loop. Sinks are
plain callables: they must not block (queue the event, or fan it out).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # an annotation only: this module (and the cache above it) imports without torch
    from .engine import Engine
from .requests import (
    AudioEvent,
    CancelRequest,
    EngineEvent,
    ErrorEvent,
    Reassign,
    SentenceRequest,
    SynthesisOptions,
    TimingEvent,
    next_request_id,
)

log = logging.getLogger(__name__)

Sink = Callable[[EngineEvent], None]


@dataclass(frozen=True)
class _Route:
    request: SentenceRequest
    sink: Sink


class EngineClient:
    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self._loop = loop
        self._routes: dict[int, _Route] = {}

    def start(self) -> None:
        self.engine.start(self._publish)

    def stop(self) -> None:
        self.engine.stop()

    def submit(self, request: SentenceRequest, sink: Sink) -> None:
        """Synthesize `request`; its events go to `sink` (on the loop) until a `last` one."""
        self.engine.submit(request)  # raises on an unknown voice: no route left behind
        self._routes[request.request_id] = _Route(request, sink)

    def cancel(self, cancel: CancelRequest) -> None:
        """Drop the matching sentences: their sinks get nothing more, the engine frees their slots."""
        for request_id in [r for r, route in self._routes.items() if cancel.matches(route.request)]:
            del self._routes[request_id]
        self.engine.cancel(cancel)

    def reassign(self, request_id: int, owner: SentenceRequest) -> None:
        """Request `request_id` now serves `owner`'s session (see Reassign); its sink stays."""
        route = self._routes.get(request_id)
        if route is not None:
            self._routes[request_id] = _Route(route.request.speaking_for(owner), route.sink)
            self.engine.reassign(Reassign(request_id, owner))

    def in_flight(self) -> int:
        return len(self._routes)

    def _publish(self, events: list[EngineEvent]) -> None:  # the engine's thread
        try:
            self._loop.call_soon_threadsafe(self._dispatch, events)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _dispatch(self, events: list[EngineEvent]) -> None:
        for event in events:
            route = self._routes.get(event.request_id)
            if route is None:
                continue  # cancelled while the batch was on its way
            if event.last:
                del self._routes[event.request_id]
            try:
                route.sink(event)
            except Exception:  # one broken consumer must not starve the others
                log.exception("engine event sink failed for request %d", event.request_id)


async def synthesize_once(client: EngineClient, voice: str, spoken: str, options: SynthesisOptions) -> np.ndarray:
    """Run one sentence through the engine and gather its native-rate audio (warm-up, tests)."""
    queue: asyncio.Queue[EngineEvent] = asyncio.Queue()
    request = SentenceRequest(f"internal-{next_request_id()}", "default", spoken, voice, options, 0)
    client.submit(request, queue.put_nowait)
    chunks: list[np.ndarray] = []
    while True:
        event = await queue.get()
        if isinstance(event, ErrorEvent):
            raise RuntimeError(event.message)
        if isinstance(event, TimingEvent):  # word timings: not audio
            continue
        assert isinstance(event, AudioEvent)
        chunks.append(event.pcm)
        if event.last:
            return np.concatenate(chunks)
