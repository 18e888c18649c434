"""Where a session gets a sentence's audio events: the engine directly, or through the cache.

A session builds a SentenceRequest (its `deliver` receives AudioEvents/ErrorEvent, from any
thread) and hands it to its source with the session's output spec; cancels go the same way.
"""

from __future__ import annotations

from typing import Protocol

from ..cache.keys import OutputSpec
from ..engine.requests import CancelRequest, SentenceRequest

__all__ = ["EngineSource", "OutputSpec", "SentenceSource"]


class SentenceSource(Protocol):
    def submit(self, request: SentenceRequest, output: OutputSpec) -> None: ...

    def cancel(self, cancel: CancelRequest) -> None: ...


class EngineSource:
    """No cache: every sentence is synthesized."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def submit(self, request: SentenceRequest, output: OutputSpec) -> None:
        self.engine.submit(request)

    def cancel(self, cancel: CancelRequest) -> None:
        self.engine.cancel(cancel)
