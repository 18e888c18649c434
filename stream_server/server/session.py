"""One client's session, independent of the wire protocol: the API every protocol adapter drives
(configure, text, flush, cancel, end), on parts that each own one thing:

- session_settings.py: the client's settings, checked against the voices (and their speakers);
- contexts.py: the contexts a session holds and the sentences on their way to the client;
- flow.py: how far the client is behind, which every limit reads (audio ahead, backlog, stalls);
- delivery.py: the one pump that sends everything in order, encoded, with word times.

Text goes in per context; each completed sentence is handed to the session's SentenceSource (the
engine, through the sentence cache: sentences are synthesized in parallel, repeated ones replayed)
once flow control lets it, and the pump sends the sentences strictly in order. A sentence's spoken
form (what is synthesized, what the cache keys on, what seeds its noise) is computed here, once,
and carried on its request.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial

from ..audio.formats import OutputSpec
from ..config import SessionSection
from ..engine.requests import (
    SPEAKER_OPTION,
    AudioEvent,
    CancelRequest,
    EngineEvent,
    ErrorEvent,
    SentenceRequest,
    SynthesisOptions,
)
from ..text.spoken_form import seed_of, spoken_form, spoken_seed
from .audio_ahead import AudioAhead
from .contexts import Context, ContextTable, Ticket
from .delivery import Delivery
from .events import Cancelled, Done, Error, Flushed, Ready, SessionError, SessionEvent, check_unicode
from .flow import FlowControl
from .send_stall import StallGuard
from .sentence_cost import VoiceCost, estimate, refusal
from .sentence_source import SentenceSource
from .session_settings import SessionSettings, VoiceBook, reconfigured

log = logging.getLogger(__name__)

Emit = Callable[[SessionEvent], Awaitable[None]]
CloseTransport = Callable[[int], Awaitable[None]]


def sentence_seed(text: str) -> int:
    """The noise seed of a sentence is a function of its spoken form, so audio is reproducible
    and equal for every text the cache treats as the same sentence."""
    return spoken_seed(text)


def _admit_all(session: Session, speakable: bool) -> None:
    pass


def _ignore_seconds(seconds: float) -> None:
    pass


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class SessionHooks:
    """How a session reaches the server and the wire around it; given when it is made."""

    # raises SessionError for text refused now (admission.py); `speakable`: the text has more than
    # white space (only that is activity: white space keeps nobody's session load)
    admit_text: Callable[[Session, bool], None] = _admit_all
    on_first_audio: Callable[[float], None] = _ignore_seconds  # seconds from a sentence's text to its first audio
    on_stall: Callable[[], None] = _nothing  # its client stopped reading (counted by the server)
    close_transport: CloseTransport | None = None  # closes the client's connection with a close code


@dataclass(frozen=True)
class SessionDeps:
    """What a session is made of: where its sentences are synthesized, the voices it may use, how
    its events reach the client, its limits (the config's session section: the same defaults) and
    its hooks."""

    source: SentenceSource
    voices: VoiceBook
    emit: Emit
    config: SessionSection = field(default_factory=SessionSection)
    hooks: SessionHooks = field(default_factory=SessionHooks)


class Session:
    def __init__(self, deps: SessionDeps, settings: SessionSettings) -> None:
        self.session_id = uuid.uuid4().hex[:16]
        self.settings = settings
        self.source = deps.source
        self._deps = deps
        self.contexts = ContextTable(deps.config)
        self.flow = FlowControl(deps.config, self._to_source, self.contexts.buffered_chars, self._on_stall)
        self._delivery = Delivery(
            f"pump-{self.session_id}", self._send, self.flow, self._rate_of, deps.hooks.on_first_audio
        )
        self._ordinal = 0
        self._started_at = time.monotonic()
        # The session's text comes all at once (an HTTP request, compat.open_for_request): a
        # sentence refused for its cost refuses the call that completed it (SessionError), rather
        # than an error in its place while the rest is spoken.
        self.whole_text = False

    @property
    def sentences_submitted(self) -> int:
        return self._ordinal

    def age(self) -> float:
        return time.monotonic() - self._started_at

    # --- how far the client is behind (flow.py), as the server reads it --------------------
    @property
    def ahead(self) -> AudioAhead:
        return self.flow.ahead

    @property
    def guard(self) -> StallGuard:
        return self.flow.guard

    @property
    def stalled(self) -> asyncio.Event:
        """Set once a send to the client made no progress for the stall timeout: the session
        has dropped its work and sends nothing more; the adapter closes the connection."""
        return self.flow.stalled

    @property
    def last_output_at(self) -> float:
        return self.flow.last_output_at

    def is_idle(self) -> bool:
        return self.flow.is_idle()

    def pending_chars(self) -> int:
        return self.flow.pending_chars()

    def queued_sentences(self) -> int:
        return self.flow.sentences

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self.settings = self._deps.voices.checked(self.settings)
        self._delivery.start()
        await self._send(self._ready())

    async def wait_done(self) -> None:
        await self._delivery.wait_done()

    async def shutdown(self, code: int = 1001) -> None:
        """Server going away: drop what is left and close the client's connection."""
        await self.close()
        close_transport = self._deps.hooks.close_transport
        if close_transport is not None:
            await close_transport(code)

    async def close(self) -> None:
        """Client gone: drop all engine work of this session now."""
        self._drop_work()
        self._delivery.cancel()

    def _drop_work(self) -> None:
        self.flow.stop()
        self.source.cancel(CancelRequest(self.session_id))
        for ctx in self.contexts.values():
            self._cancel_tickets(ctx)

    def _on_stall(self) -> None:
        """The client stopped reading: everything it was to get is dropped now (its engine slots
        and queued sentences go to the other sessions) and nothing more is sent."""
        log.warning(
            "event=send_stall session_id=%s timeout_s=%.1f audio_held_s=%.1f",
            self.session_id, self.guard.timeout, self.ahead.held,
        )
        self._drop_work()
        self._delivery.drop_queued()
        self._deps.hooks.on_stall()

    # --- client requests ------------------------------------------------------------------
    async def configure(
        self, voice: str | None, sample_rate: int | None, fmt: str | None, options: SynthesisOptions | None = None,
    ) -> None:
        """New settings before any text; what is not given stays as it is (a new voice also
        drops the old voice's speaker)."""
        if self._ordinal > 0 or self.contexts.buffered_chars() > 0:
            raise SessionError("config_after_text", "config must come before any text")
        settings = reconfigured(self.settings, voice, sample_rate, fmt, options)
        self.settings = self._deps.voices.checked(settings)
        await self._send(self._ready())

    async def text(self, text: str, context_id: str = "default") -> None:
        ctx = self._admitted(text, context_id)
        for sentence in ctx.segmenter.push(text):
            self._submit(context_id, ctx, sentence)

    async def sentence(self, text: str, context_id: str = "default") -> None:
        """`text` spoken as one sentence, not segmented (api_v2's pieces: its own split decides);
        what the context had buffered is spoken first."""
        ctx = self._admitted(text, context_id)
        for sentence in [*ctx.segmenter.flush(), *([text] if text.strip() else [])]:
            self._submit(context_id, ctx, sentence)

    async def flush(self, context_id: str = "default") -> None:
        """Speak the context's buffered text. An unknown context has nothing to flush: it is
        answered all the same, and no context is made for it."""
        ctx = self.contexts.known(context_id)
        self.flow.check_room(1)
        if ctx is not None and ctx.segmenter.pending:  # it would start work: admitted like text that would
            self._deps.hooks.admit_text(self, False)
        if ctx is not None:
            for sentence in ctx.segmenter.flush():
                self._submit(context_id, ctx, sentence)
        self._delivery.queue_marker(Flushed(context_id))

    async def cancel(self, context_id: str = "default") -> None:
        ctx = self.contexts.known(context_id)
        if ctx is not None:  # an unknown context has nothing to drop: no context is made for it
            self.contexts.clear_text(ctx)
            self._cancel_tickets(ctx)
        self.source.cancel(CancelRequest(self.session_id, context_id))
        self.flow.room_freed()
        await self._send(Cancelled(context_id))

    def set_context_options(self, context_id: str, options: SynthesisOptions) -> None:
        """Synthesis options for the context's sentences from now on (a protocol with per-context
        voice settings); other contexts keep the session's."""
        self.contexts.with_options(context_id, options)

    def knows(self, context_id: str) -> bool:
        """Whether the session holds the context (open, or closed and not yet forgotten)."""
        return self.contexts.knows(context_id)

    def known_contexts(self) -> int:
        """How many contexts the session holds (open ones and recently closed ones)."""
        return len(self.contexts)

    async def report(self, error: SessionError, context_id: str | None = None) -> None:
        """Tell the client about its bad request (the session goes on)."""
        await self._send(Error(error.code, error.message, context_id, error.retry_after))

    async def end(self) -> None:
        for context_id, ctx in self.contexts.items():
            for sentence in ctx.segmenter.flush():
                self._submit(context_id, ctx, sentence)
        self._delivery.queue_marker(Done())

    # --- internals --------------------------------------------------------------------------
    def _admitted(self, text: str, context_id: str) -> Context:
        """The context `text` goes to, once the text is checked and the session admitted for it."""
        if not isinstance(text, str):
            raise SessionError("invalid_message", "text must be a string")
        check_unicode(text)
        most = self._deps.config.max_text_chars
        if len(text) > most:
            raise SessionError("text_too_long", f"text of {len(text)} characters exceeds the limit of {most}")
        known = self.contexts.known(context_id)  # a bad id is refused first
        self.flow.check_room(len(text))
        speakable = bool(text.strip())
        if speakable or (known is not None and known.segmenter.pending):  # white space may end a sentence
            self._deps.hooks.admit_text(self, speakable)
        return self.contexts.opened(context_id)

    def _ready(self) -> Ready:
        s = self.settings
        return Ready(self.session_id, s.voice_name, s.sample_rate, s.format)

    def _rate_of(self, voice: str) -> int:
        return self._deps.voices.rates[voice]

    def _submit(self, context_id: str, ctx: Context, sentence: str) -> None:
        s = self.settings
        spoken = spoken_form(sentence)  # what is spoken; the client still sees its own text
        options = replace(ctx.options or s.options, seed=seed_of(spoken) ^ s.seed_base)
        if s.speaker is not None:  # part of the options: the cache keys on it too
            options = replace(options, extra=options.extra + ((SPEAKER_OPTION, s.speaker),))
        voice = self._deps.voices.costs.get(s.voice, VoiceCost())
        refused = refusal(estimate(spoken, voice, options.length_scale), voice, self._deps.config.max_sentence_phonemes)
        if refused is not None and self.whole_text:
            raise refused
        request = SentenceRequest(self.session_id, context_id, spoken, s.voice, options, self._ordinal)
        self._ordinal += 1
        ticket = Ticket(context_id, ctx.take_index(), sentence, ctx, request, OutputSpec(s.sample_rate, s.format))
        ctx.track(ticket)
        self._delivery.queue(ticket)
        if refused is None:
            self.flow.accept(ticket)  # to the source now, or once the client has caught up
        else:  # never reaches the engine: its error goes out in its place, the rest goes on
            ticket.released = True  # it holds none of the client's backlog
            ticket.events.put_nowait(ErrorEvent(request.request_id, refused.code, refused.message))

    def _to_source(self, ticket: Ticket) -> None:
        self.source.submit(ticket.request, ticket.output, partial(self._arrived, ticket))

    def _arrived(self, ticket: Ticket, event: EngineEvent) -> None:
        """A sentence's event from its source (on the loop): queued for the pump, its audio
        counted ahead of the client."""
        ticket.events.put_nowait(event)
        if isinstance(event, AudioEvent):
            self.flow.arrived(ticket, len(event.pcm) / self._rate_of(ticket.request.voice), event.last)

    def _cancel_tickets(self, ctx: Context) -> None:
        for ticket in ctx.tickets:
            ticket.cancelled = True
            self.flow.release(ticket)
            ticket.events.put_nowait(None)  # wake the pump if it waits on this one
        ctx.tickets = []

    async def _send(self, event: SessionEvent) -> bool:
        """Emit to the client, watched for a stall (False: stalled, nothing sent)."""
        return await self.flow.guard(self._deps.emit(event))
