"""Where a session gets a sentence's audio events: the engine directly, or through the cache.

A session hands each sentence to its source with its output spec and a sink; the sink receives the
sentence's engine events (timings, audio chunks, an error) on the event loop. Cancels go the same
way.
"""

from __future__ import annotations

from typing import Protocol

from ..audio.formats import OutputSpec
from ..engine.client import EngineClient, Sink
from ..engine.requests import CancelRequest, SentenceRequest


class SentenceSource(Protocol):
    def submit(self, request: SentenceRequest, output: OutputSpec, sink: Sink) -> None: ...

    def cancel(self, cancel: CancelRequest) -> None: ...


class EngineSource:
    """No cache: every sentence is synthesized (the output spec only matters to a cache)."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client

    def submit(self, request: SentenceRequest, output: OutputSpec, sink: Sink) -> None:
        self.client.submit(request, sink)

    def cancel(self, cancel: CancelRequest) -> None:
        self.client.cancel(cancel)
