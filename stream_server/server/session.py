"""One client's session, independent of the wire protocol.

Text goes in per context; each completed sentence is submitted to the session's SentenceSource
(the engine, through the sentence cache: sentences are synthesized in parallel, repeated ones
replayed) as soon as the audio ahead of the client leaves room (audio_ahead.py: at once for a
client that reads), while a single pump sends them to the client strictly in order:
sentence_start, its audio, sentence_end, never interleaved with another sentence. Every send is
watched: one the client does not take for the stall timeout ends the session (send_stall.py). A sentence's
spoken form (what is synthesized, what the cache keys on, what seeds its noise) is computed here,
once, and carried on its request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Awaitable, Callable

from ..audio.formats import AudioFormatError, OutputSpec, SentenceEncoder, check_output
from ..config import SPEAKER_SEPARATOR
from ..engine.requests import (
    AudioEvent,
    SPEAKER_OPTION,
    CancelRequest,
    EngineEvent,
    ErrorEvent,
    SentenceRequest,
    SynthesisOptions,
    TimingEvent,
)
from ..text.segmenter import SegmenterLimits, SentenceSegmenter
from ..text.spoken_form import seed_of, spoken_form, spoken_seed
from .audio_ahead import AudioAhead, Share, SubmitGate
from .send_stall import StallGuard
from .sentence_source import SentenceSource
from .events import (
    Audio,
    Cancelled,
    Done,
    Error,
    Flushed,
    Ready,
    SentenceEnd,
    SentenceStart,
    SessionError,
    SessionEvent,
    Words,
    shown,
)

log = logging.getLogger(__name__)

Emit = Callable[[SessionEvent], Awaitable[None]]


def sentence_seed(text: str) -> int:
    """The noise seed of a sentence is a function of its spoken form, so audio is reproducible
    and equal for every text the cache treats as the same sentence."""
    return spoken_seed(text)


_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")


def text_words(text: str) -> list[str]:
    """The sentence's words as the client wrote them: whitespace-split, punctuation stripped
    from both ends, punctuation-only tokens dropped."""
    words = (_EDGE_PUNCTUATION.sub("", token) for token in text.split())
    return [w for w in words if w]


def word_timestamps(text: str, timing: TimingEvent, offset: float = 0.0) -> list[dict]:
    """[{"word", "start", "end"}] in seconds (+ offset) for the text's words.

    When the voice's spoken word groups match the text's words one to one, each word gets its
    group's span. Otherwise (numbers, abbreviations and symbols expand into several spoken
    words) the voiced span (first group's start to last group's end) is spread over the text's
    words in proportion to their character counts.
    """
    words = text_words(text)
    if not words:
        return []
    groups = timing.word_frames
    if len(groups) == len(words):
        spans = [(float(a), float(b)) for a, b in groups]
    else:
        lo, hi = (groups[0][0], groups[-1][1]) if groups else (0, timing.num_frames)
        total = sum(len(w) for w in words)
        spans, done = [], 0
        for w in words:
            a = lo + (hi - lo) * done / total
            done += len(w)
            spans.append((a, lo + (hi - lo) * done / total))
    fs = timing.frame_seconds
    return [
        {"word": w, "start": round(offset + a * fs, 4), "end": round(offset + b * fs, 4)}
        for w, (a, b) in zip(words, spans)
    ]


def _note_pump_end(task: asyncio.Task) -> None:
    """Retrieve how the pump ended, so a client that left mid-send (its send raised) is not
    reported as "Task exception was never retrieved"; anything else is a server fault."""
    if task.cancelled() or task.exception() is None:
        return
    exc = task.exception()
    if _is_disconnect(exc):
        log.debug("event=pump_end task=%s client gone: %r", task.get_name(), exc)
    else:
        log.error("event=pump_failed task=%s", task.get_name(), exc_info=exc)


_DISCONNECTS = {"WebSocketDisconnect", "ConnectionClosed"}  # Starlette's; the websockets package's


def _is_disconnect(exc: BaseException) -> bool:
    """The client left: a reset or closed transport (OSError, uvicorn's ClientDisconnected among
    them), or a WebSocket library's disconnect, named here since a session imports no wire."""
    return isinstance(exc, OSError) or any(c.__name__ in _DISCONNECTS for c in type(exc).__mro__)


@dataclass
class SessionSettings:
    voice: str
    sample_rate: int
    format: str = "pcm_s16le"
    options: SynthesisOptions = field(default_factory=SynthesisOptions)
    # A sentence's seed is its spoken form's, xor this: 0 gives every session the same audio for
    # the same text (and cache hits); a client's own seed (GPT-SoVITS api_v2's) changes it.
    seed_base: int = 0
    # A multi-speaker voice's speaker (a client asked for "<voice>#<speaker>"); None: the voice's own.
    speaker: str | None = None

    @property
    def voice_name(self) -> str:
        """The voice as a client names it (with its speaker)."""
        return self.voice if self.speaker is None else f"{self.voice}{SPEAKER_SEPARATOR}{self.speaker}"


@dataclass
class _Ticket:
    """A sentence on its way to the client."""

    context_id: str
    index: int
    text: str
    context: _Context  # its words' clock (the context may be forgotten and its id reused meanwhile)
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    created_at: float = field(default_factory=time.monotonic)
    first_audio_at: float | None = None
    done: bool = False  # the pump is through with it (sent, failed or cancelled)
    released: bool = False  # no longer counted in the session's backlog
    request: SentenceRequest | None = None  # what goes to the source, once there is room ahead
    output: OutputSpec | None = None
    share: Share | None = None  # its audio ahead of the client, once submitted


@dataclass(frozen=True)
class _Marker:
    event: SessionEvent


@dataclass
class _Context:
    segmenter: SentenceSegmenter
    next_index: int = 0
    tickets: list[_Ticket] = field(default_factory=list)
    audio_seconds: float = 0.0  # audio of the context's finished sentences: its words' offset
    options: SynthesisOptions | None = None  # the context's own voice settings (else the session's)

    def is_open(self) -> bool:
        """Text pending, or sentences not yet fully sent (counts against max_contexts)."""
        return bool(self.segmenter.pending) or any(
            not t.cancelled and not t.done for t in self.tickets
        )


class Session:
    def __init__(
        self,
        source: SentenceSource,
        voice_rates: dict[str, int],
        settings: SessionSettings,
        emit: Emit,
        limits: SegmenterLimits,
        max_text_chars: int,
        max_contexts: int = 8,
        speakers: dict[str, list[str]] | None = None,
        max_context_id_chars: int = 256,
        max_pending_chars: int = 20000,
        max_audio_ahead_seconds: float = 0.0,
        send_stall_timeout_seconds: float = 0.0,
    ) -> None:
        self.session_id = uuid.uuid4().hex[:16]
        self.source = source
        self.voice_rates = voice_rates
        self.speakers = speakers or {}  # voice -> its speakers' names (multi-speaker voices)
        self.settings = settings
        self._emit = emit
        self._limits = limits
        self._max_text_chars = max_text_chars
        self._max_contexts = max_contexts
        self._max_context_id_chars = max_context_id_chars
        self._max_pending_chars = max_pending_chars
        # Characters of sentences submitted and not yet through the pump (sent, failed or
        # cancelled), plus one per queued marker: with the segmenters' text, what the client has
        # asked for and not yet received, which bounds the audio a session holds for a client
        # that does not read.
        self._backlog = 0
        self.last_output_at = time.monotonic()  # when the pump last finished an item
        # Backpressure (audio_ahead.py, send_stall.py): sentences reach the source only while the
        # audio ahead of the client is under the bound; every send is watched for a stall.
        self.ahead = AudioAhead(max_audio_ahead_seconds)
        self._gate: SubmitGate[_Ticket] = SubmitGate(self.ahead, self._submit_now, lambda t: t.cancelled)
        self.guard = StallGuard(send_stall_timeout_seconds, self._on_stall)
        self.on_stall: Callable[[], None] = lambda: None  # the server counts stalls
        # The open contexts and the max_contexts closed ones most recently given text (in order of
        # that, oldest first): a reused id goes on with its sentence index and word clock. Older closed ones are
        # forgotten (a client may use any number of ids over a session's life).
        self._contexts: OrderedDict[str, _Context] = OrderedDict()
        self._outbox: asyncio.Queue[_Ticket | _Marker] = asyncio.Queue()
        self._ordinal = 0
        self._started_at = time.monotonic()
        self._pump_task: asyncio.Task | None = None
        self._sending = False
        # Set by the protocol adapter: closes the client's connection with a close code.
        self.close_transport: Callable[[int], Awaitable[None]] | None = None
        self.on_first_audio: Callable[[float], None] = lambda seconds: None
        # Set by the server: refuses text (SessionError) the server cannot take now (admission.py).
        self.admit_text: Callable[[Session], None] = lambda session: None

    @property
    def sentences_submitted(self) -> int:
        return self._ordinal

    def age(self) -> float:
        return time.monotonic() - self._started_at

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self.settings = self._resolve_speaker(self.settings)
        self._validate(self.settings)
        self._pump_task = asyncio.create_task(self._pump(), name=f"pump-{self.session_id}")
        self._pump_task.add_done_callback(_note_pump_end)
        await self._send(self._ready())

    @property
    def stalled(self) -> asyncio.Event:
        """Set once a send to the client made no progress for the stall timeout: the session
        has dropped its work and sends nothing more; the adapter closes the connection."""
        return self.guard.stalled

    async def wait_done(self) -> None:
        if self._pump_task is not None:
            await self._pump_task

    def is_idle(self) -> bool:
        """No sentence is being sent and none is queued to be (a stalled session sends nothing)."""
        return self.stalled.is_set() or (not self._sending and self._outbox.empty())

    async def shutdown(self, code: int = 1001) -> None:
        """Server going away: drop what is left and close the client's connection."""
        await self.close()
        if self.close_transport is not None:
            await self.close_transport(code)

    async def close(self) -> None:
        """Client gone: drop all engine work of this session now."""
        self._drop_work()
        if self._pump_task is not None and not self._pump_task.done():
            self._pump_task.cancel()

    def _drop_work(self) -> None:
        self._gate.close()
        self.source.cancel(CancelRequest(self.session_id))
        for ctx in self._contexts.values():
            self._cancel_tickets(ctx)

    def _on_stall(self) -> None:
        """The client stopped reading: everything it was to get is dropped now (its engine slots
        and queued sentences go to the other sessions) and nothing more is sent."""
        log.warning(
            "event=send_stall session_id=%s timeout_s=%.1f audio_held_s=%.1f",
            self.session_id, self.guard.timeout, self.ahead.held,
        )
        self._drop_work()
        while not self._outbox.empty():  # nothing of it will be sent
            self._outbox.get_nowait()
        self._outbox.put_nowait(_Marker(Done()))  # wakes the pump, which sees the stall and ends
        self.on_stall()

    # --- client requests ------------------------------------------------------------------
    async def configure(
        self,
        voice: str | None,
        sample_rate: int | None,
        fmt: str | None,
        options: SynthesisOptions | None = None,
    ) -> None:
        """New settings before any text; what is not given stays as it is (a new voice also
        drops the old voice's speaker)."""
        if self._ordinal > 0 or any(c.segmenter.pending for c in self._contexts.values()):
            raise SessionError("config_after_text", "config must come before any text")
        if not (voice is None or isinstance(voice, str)) or not (fmt is None or isinstance(fmt, str)):
            raise SessionError("invalid_message", "voice and format must be strings")
        if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int)):
            raise SessionError("unsupported_sample_rate", "sample_rate must be a whole number of Hz")
        settings = replace(
            self.settings,
            voice=voice or self.settings.voice,
            speaker=None if voice else self.settings.speaker,
            sample_rate=sample_rate or self.settings.sample_rate,
            format=fmt or self.settings.format,
            options=options or self.settings.options,
        )
        settings = self._resolve_speaker(settings)
        self._validate(settings)
        self.settings = settings
        await self._send(self._ready())

    async def text(self, text: str, context_id: str = "default") -> None:
        if not isinstance(text, str):
            raise SessionError("invalid_message", "text must be a string")
        if len(text) > self._max_text_chars:
            raise SessionError(
                "text_too_long",
                f"text of {len(text)} characters exceeds the limit of {self._max_text_chars}",
            )
        self._known_context(context_id)  # a bad id is refused first
        self._check_backlog(len(text))
        self.admit_text(self)
        ctx = self._open_context(context_id)
        for sentence in ctx.segmenter.push(text):
            self._submit(context_id, ctx, sentence)

    async def flush(self, context_id: str = "default") -> None:
        """Speak the context's buffered text. An unknown context has nothing to flush: it is
        answered all the same, and no context is made for it."""
        ctx = self._known_context(context_id)
        self._check_backlog(1)
        if ctx is not None:
            for sentence in ctx.segmenter.flush():
                self._submit(context_id, ctx, sentence)
        self._queue_marker(Flushed(context_id))

    async def cancel(self, context_id: str = "default") -> None:
        ctx = self._known_context(context_id)
        if ctx is not None:  # an unknown context has nothing to drop: no context is made for it
            ctx.segmenter = SentenceSegmenter(self._limits)  # drop text not yet spoken
            self._cancel_tickets(ctx)
        self.source.cancel(CancelRequest(self.session_id, context_id))
        self._gate.feed()  # the cancelled sentences' audio no longer counts ahead
        await self._send(Cancelled(context_id))

    def set_context_options(self, context_id: str, options: SynthesisOptions) -> None:
        """Synthesis options for the context's sentences from now on (a protocol with per-context
        voice settings); other contexts keep the session's. A new context is remembered closed
        (it opens with its first text, within the limit)."""
        ctx = self._known_context(context_id) or self._remember(context_id)
        ctx.options = options
        self._contexts.move_to_end(context_id)  # kept like a context given text

    def context_clock(self, context_id: str) -> float:
        """Seconds of the context's audio sent in full so far: where its next sentence's word
        timestamps start (0 for a context not known)."""
        ctx = self._contexts.get(context_id)
        return ctx.audio_seconds if ctx is not None else 0.0

    def knows(self, context_id: str) -> bool:
        """Whether the session holds the context (open, or closed and not yet forgotten)."""
        return context_id in self._contexts

    def known_contexts(self) -> int:
        """How many contexts the session holds (open ones and recently closed ones)."""
        return len(self._contexts)

    async def report(self, error: SessionError, context_id: str | None = None) -> None:
        """Tell the client about its bad request (the session goes on)."""
        await self._send(Error(error.code, error.message, context_id, error.retry_after))

    async def end(self) -> None:
        for context_id, ctx in self._contexts.items():
            for sentence in ctx.segmenter.flush():
                self._submit(context_id, ctx, sentence)
        self._queue_marker(Done())

    # --- internals --------------------------------------------------------------------------
    def _ready(self) -> Ready:
        s = self.settings
        return Ready(self.session_id, s.voice_name, s.sample_rate, s.format)

    def _resolve_speaker(self, settings: SessionSettings) -> SessionSettings:
        """"<voice>#<speaker>" -> the voice, with that speaker (by name, or its number)."""
        voice, sep, speaker = settings.voice.partition(SPEAKER_SEPARATOR)
        if not sep:
            return settings
        if voice not in self.voice_rates:
            return replace(settings, voice=voice)  # _validate names the unknown voice
        names = self.speakers.get(voice, [])
        if not names:
            raise SessionError("unknown_speaker", f"voice {voice!r} has a single speaker; ask for {voice!r}")
        if speaker not in names and not (speaker.isdigit() and int(speaker) < len(names)):
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise SessionError(
                "unknown_speaker", f"voice {voice!r} has no speaker {speaker!r}; speakers ({len(names)}): {shown}"
            )
        return replace(settings, voice=voice, speaker=speaker)

    def _validate(self, settings: SessionSettings) -> None:
        if settings.voice not in self.voice_rates:
            raise SessionError(
                "unknown_voice",
                f"unknown voice {shown(settings.voice)}; available: {sorted(self.voice_rates)}",
            )
        try:
            check_output(settings.sample_rate, settings.format)
        except AudioFormatError as exc:
            raise SessionError(exc.code, str(exc)) from None

    def _known_context(self, context_id: str) -> _Context | None:
        """The context of a valid id, if the session holds one."""
        if not isinstance(context_id, str) or not context_id:
            raise SessionError("invalid_message", "context_id must be a non-empty string")
        if len(context_id) > self._max_context_id_chars:
            raise SessionError(
                "context_id_too_long",
                f"context_id of {len(context_id)} characters exceeds the limit of "
                f"{self._max_context_id_chars} (session.max_context_id_chars)",
            )
        return self._contexts.get(context_id)

    def _open_context(self, context_id: str) -> _Context:
        """The context that text goes to, made or reopened within the open-context limit."""
        ctx = self._known_context(context_id)
        if ctx is None or not ctx.is_open():
            open_now = sum(c.is_open() for c in self._contexts.values())
            if open_now >= self._max_contexts:
                raise SessionError(
                    "too_many_contexts",
                    f"context {shown(context_id)} would exceed the limit of {self._max_contexts} open "
                    "contexts per session (session.max_contexts); flush or cancel one first",
                )
        if ctx is None:
            ctx = self._remember(context_id)
        self._contexts.move_to_end(context_id)
        return ctx

    def _remember(self, context_id: str) -> _Context:
        """A new (closed) context; the least recently used closed ones past max_contexts are
        forgotten, so a session holds at most 2 x max_contexts + 1 contexts."""
        ctx = self._contexts[context_id] = _Context(SentenceSegmenter(self._limits))
        closed = [cid for cid, c in self._contexts.items() if not c.is_open()]
        for cid in closed[: max(0, len(closed) - 1 - self._max_contexts)]:  # never the new one
            del self._contexts[cid]
        return ctx

    def queued_sentences(self) -> int:
        """Sentences accepted and not yet through the pump (sent, failed or cancelled)."""
        return sum(not t.cancelled and not t.done for c in self._contexts.values() for t in c.tickets)

    def pending_chars(self) -> int:
        """Text accepted and not yet spoken and sent: the backlog and every context's buffer."""
        return self._backlog + sum(len(c.segmenter.pending) for c in self._contexts.values())

    def _check_backlog(self, more: int) -> None:
        pending = self.pending_chars()
        if pending + more > self._max_pending_chars:
            raise SessionError(
                "too_much_pending",
                f"{pending} characters are still to be spoken and sent, and {more} more would exceed "
                f"the limit of {self._max_pending_chars} (session.max_pending_chars); read the audio "
                "sent so far, or cancel, then send more",
            )

    def _queue_marker(self, event: SessionEvent) -> None:
        self._backlog += 1
        self._outbox.put_nowait(_Marker(event))

    def _release(self, ticket: _Ticket) -> None:
        if not ticket.released:
            ticket.released = True
            self._backlog -= len(ticket.text)
        self.ahead.drop(ticket.share)

    def _submit(self, context_id: str, ctx: _Context, sentence: str) -> None:
        ticket = _Ticket(context_id, ctx.next_index, sentence, ctx)
        ctx.next_index += 1
        ctx.tickets = [t for t in ctx.tickets if not t.cancelled and not t.done] + [ticket]
        spoken = spoken_form(sentence)  # what is spoken; the client still sees its own text
        options = replace(ctx.options or self.settings.options, seed=seed_of(spoken) ^ self.settings.seed_base)
        if self.settings.speaker is not None:  # part of the options: the cache keys on it too
            options = replace(options, extra=options.extra + ((SPEAKER_OPTION, self.settings.speaker),))
        request = SentenceRequest(
            session_id=self.session_id,
            context_id=context_id,
            spoken=spoken,
            voice=self.settings.voice,
            options=options,
            session_ordinal=self._ordinal,
        )
        self._ordinal += 1
        self._backlog += len(sentence)
        ticket.request = request
        ticket.output = OutputSpec(self.settings.sample_rate, self.settings.format)
        self._outbox.put_nowait(ticket)
        self._gate.offer(ticket)  # to the source now, or once the client has caught up

    def _submit_now(self, ticket: _Ticket) -> None:
        request = ticket.request
        ticket.share = self.ahead.open(len(request.spoken), request.options.length_scale)
        self.source.submit(request, ticket.output, partial(self._arrived, ticket))

    def _arrived(self, ticket: _Ticket, event: EngineEvent) -> None:
        """A sentence's event from its source (on the loop): queued for the pump, its audio
        counted ahead of the client."""
        ticket.events.put_nowait(event)
        if isinstance(event, AudioEvent):
            self.ahead.arrived(ticket.share, len(event.pcm) / self.voice_rates[ticket.request.voice], event.last)
            if event.last:  # maybe room now; not from inside the source's own call (a cache fan-out)
                asyncio.get_running_loop().call_soon(self._gate.feed)

    def _cancel_tickets(self, ctx: _Context) -> None:
        for ticket in ctx.tickets:
            ticket.cancelled = True
            self._release(ticket)
            ticket.events.put_nowait(None)  # wake the pump if it waits on this one
        ctx.tickets = []

    async def _pump(self) -> None:
        while not self.stalled.is_set():
            item = await self._outbox.get()
            if self.stalled.is_set():
                return
            if isinstance(item, _Marker):
                await self._send(item.event)
                self._backlog -= 1
                if isinstance(item.event, Done):
                    return
            elif not item.cancelled:
                self._sending = True
                try:
                    await self._send_sentence(item)
                finally:
                    self._sending = False
                    item.done = True
                    self._release(item)
            else:
                item.done = True
                self._release(item)
            self._gate.feed()
            self.last_output_at = time.monotonic()

    async def _send(self, event: SessionEvent) -> bool:
        """Emit to the client, watched for a stall (False: stalled, nothing sent)."""
        return await self.guard(self._emit(event))

    async def _send_sentence(self, ticket: _Ticket) -> None:
        s = self.settings
        encoder = SentenceEncoder(self.voice_rates[s.voice], s.sample_rate, s.format)
        ctx = ticket.context
        offset = ctx.audio_seconds
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
                if not await self._send(SentenceStart(ticket.context_id, ticket.index, ticket.text)):
                    return
                started = True
                if timing is not None:
                    words = word_timestamps(ticket.text, timing, offset)
                    if not await self._send(Words(ticket.context_id, ticket.index, words)):
                        return
            pcm = encoder.encode(event.pcm, event.last)
            if ticket.cancelled:
                return
            if pcm:
                if ticket.first_audio_at is None:
                    ticket.first_audio_at = time.monotonic()
                    self.on_first_audio(ticket.first_audio_at - ticket.created_at)
                if not await self._send(Audio(ticket.context_id, ticket.index, pcm)):
                    return
            self.ahead.sent(ticket.share, len(event.pcm) / self.voice_rates[s.voice])
            self._gate.feed()
            if event.last:
                ctx.audio_seconds += encoder.samples / s.sample_rate
                end = SentenceEnd(ticket.context_id, ticket.index, encoder.samples, event.cached)
                await self._send(end)
                return
