"""Limits on what a client controls in a session (docs/limits.md), on the Session itself with a
source that answers at once (or never): context ids, how many contexts a session keeps, text
waiting in a context, and the session's backlog of text not yet spoken and sent."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_source import HeldSource, InstantSource
from stream_server.config import SessionSection
from stream_server.server.events import Cancelled, Error, Flushed, SentenceEnd, SentenceStart, SessionError, Words
from stream_server.server.session import Session, SessionDeps
from stream_server.server.session_settings import SessionSettings, VoiceBook
from stream_server.server.word_times import context_words
from stream_server.text.segmenter import SegmenterLimits, SentenceSegmenter

RATE = 22050
MAX_CONTEXTS = 4


class Client:
    """A session and everything it sent."""

    def __init__(self, source=None, **limits) -> None:
        self.events: list = []
        self.flushes: set[str] = set()
        self._flush = asyncio.Event()
        self.source = source or InstantSource()
        limits.setdefault("max_contexts", MAX_CONTEXTS)
        limits.setdefault("max_text_chars", 1000)
        config = SessionSection(soft_sentence_chars=20, hard_sentence_chars=40, max_audio_ahead_seconds=0,
                                send_stall_timeout_seconds=0, **limits)
        voices = VoiceBook({"v": RATE, "w": 16000})
        self.session = Session(SessionDeps(self.source, voices, self.emit, config), SessionSettings("v", RATE))

    async def emit(self, event) -> None:
        self.events.append(event)
        if isinstance(event, Flushed):
            self.flushes.add(event.context_id)
            self._flush.set()

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    async def flushed(self, context_id: str) -> None:
        """Until the context's flush is answered (its audio so far all sent)."""
        while context_id not in self.flushes:
            self._flush.clear()
            await asyncio.wait_for(self._flush.wait(), 10)
        self.flushes.discard(context_id)


@pytest.fixture
async def client():
    c = Client()
    await c.session.start()
    yield c
    await c.session.close()


# --- context ids ----------------------------------------------------------------------------------
async def test_a_context_id_over_the_limit_is_refused_and_never_echoed(client):
    session = client.session
    long_id = "x" * 257
    for call in (session.text("Hello.", long_id), session.flush(long_id), session.cancel(long_id)):
        with pytest.raises(SessionError) as refused:
            await call
        assert refused.value.code == "context_id_too_long"
        assert "257 characters" in refused.value.message and "x" * 20 not in refused.value.message
    with pytest.raises(SessionError, match="context_id_too_long|exceeds"):
        session.set_context_options("y" * 10_000, session.settings.options)
    assert session.known_contexts() == 0
    await session.text("At the limit.", "z" * 256)  # 256 is fine
    await session.flush("z" * 256)
    await client.flushed("z" * 256)
    assert [e.context_id for e in client.of(SentenceEnd)] == ["z" * 256]


async def test_the_context_id_limit_is_a_setting():
    c = Client(max_context_id_chars=8)
    await c.session.start()
    await c.session.text("Fine.", "12345678")
    with pytest.raises(SessionError, match="limit of 8"):
        await c.session.text("Not fine.", "123456789")
    await c.session.close()


# --- how many contexts a session keeps ----------------------------------------------------------
async def test_cancel_and_flush_on_new_ids_make_no_contexts(client):
    session = client.session
    for i in range(3000):
        await session.cancel(f"cancel-{i}")
        await session.flush(f"flush-{i}")
    assert session.known_contexts() == 0
    assert [e.context_id for e in client.of(Cancelled)] == [f"cancel-{i}" for i in range(3000)]
    await client.flushed("flush-2999")
    assert len(client.of(Flushed)) == 3000  # each answered all the same


async def test_flush_and_cancel_cannot_open_contexts_past_the_limit(client):
    session = client.session
    for i in range(MAX_CONTEXTS):  # no sentence end: each stays open
        await session.text("words waiting", f"open-{i}")
    for i in range(100):
        await session.flush(f"new-{i}")
        await session.cancel(f"other-{i}")
    with pytest.raises(SessionError) as refused:
        await session.text("One too many", "new-0")
    assert refused.value.code == "too_many_contexts"
    assert session.known_contexts() == MAX_CONTEXTS
    await session.text(" and more", "open-1")  # an open one still takes text


async def test_closed_contexts_are_forgotten_beyond_a_bound(client):
    """3,000 contexts used one after another: the session keeps the open ones and the most
    recently closed ones, at most 2 x max_contexts + 1 in all."""
    session = client.session
    for i in range(3000):
        await session.text("Hello there.", f"turn-{i}")
        await session.flush(f"turn-{i}")
        await client.flushed(f"turn-{i}")  # sent: the context is closed
        assert session.known_contexts() <= 2 * MAX_CONTEXTS + 1
    assert len(client.of(SentenceEnd)) == 3000 and not client.of(Error)


async def test_a_reused_context_goes_on_with_its_index_and_word_clock(client):
    session = client.session
    await session.text("One two three.", "talk")
    await session.flush("talk")
    await client.flushed("talk")
    first_end = client.of(SentenceEnd)[-1]
    client.events.clear()
    await session.text("Four five.", "talk")
    await session.flush("talk")
    await client.flushed("talk")
    assert client.of(SentenceStart)[0].index == 1
    words = client.of(Words)[0]
    assert words.offset == first_end.samples / RATE  # the context's word clock goes on
    assert context_words(words.words, words.offset)[0]["start"] >= round(first_end.samples / RATE, 4)
    # once max_contexts other contexts have closed since, it is forgotten: a new context
    for i in range(MAX_CONTEXTS + 1):
        await session.cancel(f"other-{i}")
        await session.text("x", f"other-{i}")
        await session.cancel(f"other-{i}")
    assert not session.knows("talk")
    client.events.clear()
    await session.text("Again.", "talk")
    await session.flush("talk")
    await client.flushed("talk")
    assert client.of(SentenceStart)[0].index == 0 and client.of(Words)[0].offset == 0.0


# --- text waiting in a context --------------------------------------------------------------------
pieces = st.lists(st.text(st.sampled_from(list("ab .!?\n,;-\"()")), max_size=120) | st.text(max_size=60), max_size=30)


@given(pieces)
@settings(max_examples=200, deadline=None)
def test_text_waiting_in_a_context_is_bounded_by_the_hard_limit(texts):
    async def run() -> None:
        c = Client(HeldSource(), max_pending_chars=10**9)
        await c.session.start()
        hard = 40
        for text in texts:
            await c.session.text(text, "c")
            pending = c.session.contexts.get("c").segmenter.pending if c.session.knows("c") else ""
            assert len(pending) <= 2 * hard + 1
        await c.session.close()

    asyncio.run(run())


def test_the_segmenter_holds_at_most_twice_the_hard_limit():
    seg = SentenceSegmenter(SegmenterLimits(200, 400))
    for piece in ["word " * 1000, " " * 5000, "Hello." + " " * 5000, "a" * 5000]:
        seg.push(piece)
        assert len(seg.pending) <= 2 * 400 + 1


# --- the backlog -----------------------------------------------------------------------------------
async def test_text_past_the_backlog_limit_is_refused_until_audio_is_sent():
    c = Client(HeldSource(), max_pending_chars=1000)
    session = c.session
    await session.start()
    sent = 0
    with pytest.raises(SessionError) as refused:
        for _ in range(100):
            await session.text("A sentence of some length. ", "c")
            sent += 1
            assert session.pending_chars() <= 1000
    assert refused.value.code == "too_much_pending" and "session.max_pending_chars" in refused.value.message
    assert 0 < sent < 100
    with pytest.raises(SessionError, match="too_much_pending|exceed"):
        await session.text("x" * 500, "d")
    await session.text("", "c")  # nothing more: still fine
    await session.cancel("c")  # what was waiting is dropped: room again
    assert session.pending_chars() <= 1
    await session.text("A sentence of some length. ", "c")
    await session.close()


async def test_the_backlog_drains_as_audio_is_sent(client):
    session = client.session
    for _ in range(200):  # 200 x 27 characters, far past what the limit would hold at once
        await session.text("A sentence of some length. ", "c")
        await session.flush("c")
        await client.flushed("c")
        client.events.clear()
    assert session.pending_chars() == 0
