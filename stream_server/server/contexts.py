"""A session's contexts and the sentences on their way to the client.

A context has its own text segmenter, sentence numbering, word clock and (for protocols with
per-context voice settings) synthesis options. The session holds its open contexts and the
`session.max_contexts` closed ones most recently given text, oldest first: a reused id goes on with
its sentence index and word clock, older closed ones are forgotten (a client may use any number of
ids over a session's life), so a session holds at most 2 x max_contexts + 1 contexts.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..audio.formats import OutputSpec
from ..config import SessionSection
from ..engine.requests import EngineEvent, SentenceRequest, SynthesisOptions
from ..text.segmenter import SegmenterLimits, SentenceSegmenter
from .audio_ahead import Share
from .events import SessionError, shown


@dataclass
class Ticket:
    """A sentence on its way to the client."""

    context_id: str
    index: int
    text: str
    context: Context  # its words' clock (the context may be forgotten and its id reused meanwhile)
    request: SentenceRequest  # what goes to the source, once there is room ahead
    output: OutputSpec
    events: asyncio.Queue[EngineEvent | None] = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    created_at: float = field(default_factory=time.monotonic)
    first_audio_at: float | None = None
    done: bool = False  # the pump is through with it (sent, failed or cancelled)
    released: bool = False  # no longer counted as the client's backlog
    share: Share | None = None  # its audio ahead of the client, once submitted

    def in_flight(self) -> bool:
        return not self.cancelled and not self.done


@dataclass
class Context:
    segmenter: SentenceSegmenter
    next_index: int = 0
    tickets: list[Ticket] = field(default_factory=list)
    audio_seconds: float = 0.0  # audio of the context's finished sentences: its words' offset
    options: SynthesisOptions | None = None  # the context's own voice settings (else the session's)

    def is_open(self) -> bool:
        """Text pending, or sentences not yet fully sent (counts against max_contexts)."""
        return bool(self.segmenter.pending) or any(t.in_flight() for t in self.tickets)

    def take_index(self) -> int:
        """The number of the context's next sentence."""
        self.next_index += 1
        return self.next_index - 1

    def track(self, ticket: Ticket) -> None:
        """A new sentence of the context; those through the pump are let go."""
        self.tickets = [t for t in self.tickets if t.in_flight()] + [ticket]


def check_context_id(context_id: object, max_chars: int) -> str:
    """A client's context id, or SessionError (the session's rule; adapters that read ids before
    the session sees them check with it too)."""
    if not isinstance(context_id, str) or not context_id:
        raise SessionError("invalid_message", "context_id must be a non-empty string")
    if len(context_id) > max_chars:
        raise SessionError(
            "context_id_too_long",
            f"context_id of {len(context_id)} characters exceeds the limit of {max_chars} "
            "(session.max_context_id_chars)",
        )
    return context_id


class ContextTable:
    """The contexts a session holds, least recently given text first."""

    def __init__(self, config: SessionSection) -> None:
        self._config = config
        self.segmenter_limits = SegmenterLimits(config.soft_sentence_chars, config.hard_sentence_chars)
        self._contexts: OrderedDict[str, Context] = OrderedDict()

    def __len__(self) -> int:
        return len(self._contexts)

    def __iter__(self) -> Iterator[str]:
        return iter(self._contexts)

    def items(self) -> Iterator[tuple[str, Context]]:
        return iter(list(self._contexts.items()))

    def values(self) -> list[Context]:
        return list(self._contexts.values())

    def known(self, context_id: str) -> Context | None:
        """The context of a valid id, if the session holds one (a bad id: SessionError)."""
        check_context_id(context_id, self._config.max_context_id_chars)
        return self._contexts.get(context_id)

    def get(self, context_id: str) -> Context | None:
        return self._contexts.get(context_id)

    def knows(self, context_id: str) -> bool:
        return context_id in self._contexts

    def opened(self, context_id: str) -> Context:
        """The context that text goes to, made or reopened within the open-context limit."""
        ctx = self.known(context_id)
        if ctx is None or not ctx.is_open():
            most = self._config.max_contexts
            if sum(c.is_open() for c in self._contexts.values()) >= most:
                raise SessionError(
                    "too_many_contexts",
                    f"context {shown(context_id)} would exceed the limit of {most} open "
                    "contexts per session (session.max_contexts); flush or cancel one first",
                )
        if ctx is None:
            ctx = self.remember(context_id)
        self._contexts.move_to_end(context_id)
        return ctx

    def remember(self, context_id: str) -> Context:
        """A new (closed) context; the least recently used closed ones past max_contexts are
        forgotten (never the new one)."""
        ctx = self._contexts[context_id] = Context(SentenceSegmenter(self.segmenter_limits))
        closed = [cid for cid, c in self._contexts.items() if not c.is_open()]
        for cid in closed[: max(0, len(closed) - 1 - self._config.max_contexts)]:
            del self._contexts[cid]
        return ctx

    def with_options(self, context_id: str, options: SynthesisOptions) -> None:
        """The context's own synthesis options from now on; a new context is remembered closed
        (it opens with its first text, within the limit) and kept like a context given text."""
        ctx = self.known(context_id) or self.remember(context_id)
        ctx.options = options
        self._contexts.move_to_end(context_id)

    def clear_text(self, ctx: Context) -> None:
        """Drop the context's text not yet spoken."""
        ctx.segmenter = SentenceSegmenter(self.segmenter_limits)

    def buffered_chars(self) -> int:
        """Text given and not yet cut into sentences, in every context."""
        return sum(len(c.segmenter.pending) for c in self._contexts.values())
