"""SentenceSources for tests that need a session but no engine."""

from __future__ import annotations

import asyncio

import numpy as np

from stream_server.engine.requests import AudioEvent, TimingEvent

HOP = 256


class InstantSource:
    """Every sentence's audio at once (one frame per spoken word, with word timings), on the loop."""

    def __init__(self, rate: int = 22050) -> None:
        self.rate = rate
        self.submitted = 0

    def submit(self, request, output, sink) -> None:
        self.submitted += 1
        words = max(1, len(request.spoken.split()))
        loop = asyncio.get_running_loop()
        timing = TimingEvent(request.request_id, [(i, i + 1) for i in range(words)], HOP / self.rate, words)
        loop.call_soon(sink, timing)
        loop.call_soon(sink, AudioEvent(request.request_id, 0, np.zeros(words * HOP, np.float32), last=True))

    def cancel(self, cancel) -> None:
        pass


class HeldSource(InstantSource):
    """Sentences whose audio never comes (a slow engine, or a client that does not read)."""

    def submit(self, request, output, sink) -> None:
        self.submitted += 1
