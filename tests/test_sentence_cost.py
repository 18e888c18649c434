"""What a sentence will cost, estimated before the engine (stream_server/server/sentence_cost.py):
text that expands to thousands of phonemes is refused with a clear error in its place and never
reaches the sentence source, ordinary prose passes, and the estimate is cheap."""

from __future__ import annotations

import asyncio
import time

import pytest

from fake_source import InstantSource
from stream_server.config import SessionSection
from stream_server.server.events import Error, SentenceEnd, SessionError
from stream_server.server.sentence_cost import SENTENCE_TOO_EXPENSIVE, VoiceCost, estimate, refusal
from stream_server.server.session import Session, SessionDeps
from stream_server.server.session_settings import SessionSettings, VoiceBook
from stream_server.text.segmenter import split_sentences
from test_session_properties import Recorder  # events, and when the "probe" context is flushed

JOE = VoiceCost("en-us")  # as the server sees joe: espeak-ng's en-us, no bound on a sentence's audio
JOE_AR = VoiceCost("en-us", 3072 * 256 / 22050)  # joe_ar: its static cache's 1024 steps of 3 frames
MAX = SessionSection().max_sentence_phonemes

# What issue #20 sent: ~400 characters each (one sentence, cut at session.hard_sentence_chars).
EXPENSIVE = {
    "exponents": "1e999999 " * 44,
    "dates": "On 12/31/1999 and 01/01/2000 " * 13,
    "ordinals": "the 1234567th and 9876543rd " * 14,
    "zwj_emoji": "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 " * 50,
    "mixed_rtl": "abc \u05e9\u05dc\u05d5\u05dd \u0639\u0631\u0628\u064a 123 " * 22,
}
PROSE = ("The blacksmith says your new armor will be ready by Thursday evening, and that the shield "
         "you asked for needs another day, because the leather straps have to dry before he can "
         "rivet them to the frame; he also wants you to know that the price has not changed since "
         "last winter, whatever the merchants in the square may have told you about the cost of iron")


@pytest.mark.parametrize("kind", EXPENSIVE)
def test_text_that_expands_far_beyond_its_length_is_refused(kind):
    (sentence,) = split_sentences(EXPENSIVE[kind])
    cost = estimate(sentence, JOE, 1.0)
    assert cost.phonemes > 1.5 * MAX, cost  # what reached the engine before: thousands of frames
    error = refusal(cost, JOE, MAX)
    assert error is not None and error.code == SENTENCE_TOO_EXPENSIVE
    assert "session.max_sentence_phonemes" in error.message and "shorter sentences" in error.message


def test_prose_passes_and_a_voice_bound_applies_at_its_speed():
    assert len(PROSE) > 350
    cost = estimate(PROSE, JOE_AR, 1.0)
    assert cost.phonemes < MAX and refusal(cost, JOE_AR, MAX) is None
    slow = estimate(PROSE, JOE_AR, 2.0)  # speed 0.5: twice the audio, past joe_ar's 35.7 s
    error = refusal(slow, JOE_AR, MAX)
    assert error is not None and "holds in one sentence" in error.message and "faster" in error.message
    assert refusal(estimate(PROSE, JOE, 2.0), JOE, MAX) is None  # joe makes any length at once
    assert estimate(PROSE, VoiceCost(), 1.0).phonemes == len(PROSE)  # no espeak-ng voice: characters


def test_the_estimate_is_cheap():
    estimate("Warm up.", JOE, 1.0)
    sentences = [split_sentences(t)[0] for t in EXPENSIVE.values()] + [PROSE]
    t0 = time.perf_counter()
    for _ in range(5):
        for sentence in sentences:
            estimate(sentence, JOE, 1.0)
    assert (time.perf_counter() - t0) / (5 * len(sentences)) < 0.02  # ~1 ms each on 2 cores


def session(source, emit) -> Session:
    book = VoiceBook({"joe": 22050}, costs={"joe": JOE})
    return Session(SessionDeps(source, book, emit), SessionSettings("joe", 22050))


async def test_a_refused_sentence_is_an_error_in_its_place_and_never_reaches_the_source():
    source, emit = InstantSource(), Recorder()
    s = session(source, emit)
    await s.start()
    try:
        await s.text("Before it. ", "probe")
        await s.text(EXPENSIVE["exponents"], "probe")
        await s.text(". After it.", "probe")
        await s.flush("probe")
        await asyncio.wait_for(emit.probe_done.wait(), 10)
    finally:
        await s.close()
    assert source.submitted == 2  # before and after: the expensive one never went
    kinds = [(type(e).__name__, getattr(e, "code", None)) for e in emit.events
             if isinstance(e, (SentenceEnd, Error))]
    assert kinds == [("SentenceEnd", None), ("Error", SENTENCE_TOO_EXPENSIVE), ("SentenceEnd", None)]
    assert [e.context_id for e in emit.events if isinstance(e, Error)] == ["probe"]
    assert s.pending_chars() == 0 and s.queued_sentences() == 0


async def test_a_request_whose_text_holds_one_is_refused_whole():
    s = session(InstantSource(), Recorder())
    s.whole_text = True  # an HTTP request's session (compat.open_for_request)
    await s.start()
    try:
        await s.text("Fine. " + EXPENSIVE["dates"])
        with pytest.raises(SessionError) as refused:
            await s.end()
    finally:
        await s.close()
    assert refused.value.code == SENTENCE_TOO_EXPENSIVE
