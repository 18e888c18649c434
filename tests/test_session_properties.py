"""Property-based tests of the session API every protocol adapter drives: any sequence of `text`,
`flush`, `cancel` and `configure` calls with any strings, ids and values either works or is a
SessionError with a code and a short message; the limits hold after every call; nothing is logged
at ERROR; and the session still speaks afterwards."""

from __future__ import annotations

import asyncio
import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_source import InstantSource
from stream_server.config import SessionSection
from stream_server.server.events import Error, Flushed, SentenceEnd, SessionError
from stream_server.server.session import Session, SessionDeps
from stream_server.server.session_settings import SessionSettings, VoiceBook

MAX_CONTEXTS, MAX_ID, MAX_PENDING, HARD = 3, 16, 400, 40
VOICES = {"v": 22050, "w": 16000}

ids = st.sampled_from(["default", "a", "b", "c", "d", "e"]) | st.text(max_size=MAX_ID + 4) | st.just("x" * 5000)
anything = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | st.binary(max_size=8)
texts = (st.text(max_size=80) | st.text(st.sampled_from(list("ab .!?\n,")), max_size=300)
         | st.sampled_from(["Hello there. ", "", "   ", "x" * 1001]))
calls = st.one_of(
    st.tuples(st.just("text"), texts | anything, ids | anything),
    st.tuples(st.just("flush"), ids | anything),
    st.tuples(st.just("cancel"), ids | anything),
    st.tuples(st.just("configure"), st.sampled_from(["v", "w", "nobody", "", None]) | anything,
              st.sampled_from([None, 22050, 16000, 8000, 0, -1, 10**30]) | anything,
              st.sampled_from([None, "pcm_s16le", "pcm_f32le", "ulaw", "mp3"]) | anything),
)


class Recorder:
    def __init__(self) -> None:
        self.events: list = []
        self.probe_done = asyncio.Event()

    async def __call__(self, event) -> None:
        self.events.append(event)
        if isinstance(event, Flushed) and event.context_id == "probe":
            self.probe_done.set()


def check_limits(session: Session) -> None:
    contexts = session.contexts.values()
    assert session.known_contexts() <= 2 * MAX_CONTEXTS + 1
    assert sum(c.is_open() for c in contexts) <= MAX_CONTEXTS
    assert all(len(c.segmenter.pending) <= 2 * HARD + 1 for c in contexts)
    assert session.pending_chars() <= MAX_PENDING


async def drive(script: list[tuple]) -> Recorder:
    emit = Recorder()
    config = SessionSection(soft_sentence_chars=20, hard_sentence_chars=HARD, max_text_chars=1000,
                            max_contexts=MAX_CONTEXTS, max_context_id_chars=MAX_ID, max_pending_chars=MAX_PENDING,
                            max_audio_ahead_seconds=0, send_stall_timeout_seconds=0)
    session = Session(SessionDeps(InstantSource(), VoiceBook(VOICES), emit, config), SessionSettings("v", 22050))
    await session.start()
    try:
        for name, *args in script:
            try:
                await getattr(session, name)(*args)
            except SessionError as exc:
                assert exc.code and exc.message and len(exc.message) < 400
            check_limits(session)
        # still speaks: cancel what may hold the limits, then a new context is heard to the end
        for ctx in list(session.contexts):
            await session.cancel(ctx)
        await session.text("Still here.", "probe")
        await session.flush("probe")
        await asyncio.wait_for(emit.probe_done.wait(), 10)
    finally:
        await session.close()
    assert any(isinstance(e, SentenceEnd) and e.context_id == "probe" for e in emit.events)
    return emit


@given(st.lists(calls, max_size=25))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_calls_work_or_are_coded_errors_and_the_session_still_speaks(caplog, script):
    caplog.set_level(logging.WARNING)
    caplog.clear()
    emit = asyncio.run(drive(script))
    for event in emit.events:  # nothing a client chose comes back longer than the limits allow
        context_id = getattr(event, "context_id", None)
        assert context_id is None or len(context_id) <= MAX_ID
        if isinstance(event, Error):
            assert event.code and len(event.message) < 400
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
