"""The scheduler's policy, driven with fake model outputs (no torch, no model)."""

from __future__ import annotations

import pytest

from stream_server.engine.requests import SentenceStatus
from stream_server.engine.scheduler import (
    ChunkConfig,
    Scheduler,
    SchedulerConfig,
    chunk_bounds,
)

CHUNKS = ChunkConfig(first_chunk_frames=10, chunk_frames=40, left_context=4, right_context=4)


def make(slots=2, prefills=2, budget=1000) -> Scheduler:
    cfg = SchedulerConfig(max_prefills_per_step=prefills, vocoder_frames_per_step=budget, chunks=CHUNKS)
    return Scheduler(cfg, {"v": slots})


@pytest.mark.parametrize("n", [1, 4, 9, 10, 14, 15, 49, 50, 51, 90, 200, 1000])
def test_chunk_bounds_cover_frames_exactly(n):
    bounds = chunk_bounds(n, CHUNKS)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(e > s for s, e in bounds)
    assert bounds[0][1] - bounds[0][0] <= CHUNKS.first_chunk_frames + CHUNKS.first_chunk_frames // 2


def test_chunk_bounds_first_small_then_large():
    assert chunk_bounds(100, CHUNKS) == [(0, 10), (10, 30), (30, 70), (70, 100)]
    # A remainder under half a first chunk folds into the chunk before it.
    assert chunk_bounds(74, CHUNKS) == [(0, 10), (10, 30), (30, 74)]
    assert chunk_bounds(0, CHUNKS) == []


def test_admission_respects_slots_and_prefill_budget():
    s = make(slots=2, prefills=1)
    for rid in (1, 2, 3):
        s.add(rid, "v", f"s{rid}", session_ordinal=0)
    assert s.schedule().admit == [1]
    assert s.schedule().admit == [2]
    assert s.schedule().admit == []  # no slot left
    assert s.num_waiting() == 1
    assert s.finish(1, SentenceStatus.FINISHED) is True
    assert s.schedule().admit == [3]  # the freed slot is reused at the next step


def test_first_sentence_of_a_session_goes_ahead_of_later_sentences():
    s = make(slots=1, prefills=1)
    s.add(1, "v", "A", session_ordinal=0)
    s.schedule()  # 1 takes the only slot
    s.add(2, "v", "A", session_ordinal=1)  # session A's second sentence, arrived first
    s.add(3, "v", "A", session_ordinal=2)
    s.add(4, "v", "B", session_ordinal=0)  # session B's first sentence, arrived later
    s.finish(1, SentenceStatus.FINISHED)
    assert s.schedule().admit == [4]  # B's first sentence goes first...
    s.finish(4, SentenceStatus.FINISHED)
    assert s.schedule().admit == [2]  # ...then A's next sentence (now its head)


def test_waiting_sentence_cancelled_frees_no_slot():
    s = make(slots=1)
    s.add(1, "v", "a", 0)
    s.add(2, "v", "b", 0)
    s.schedule()
    assert s.finish(2, SentenceStatus.CANCELLED) is False
    assert s.free_slots["v"] == 0
    assert s.finish(1, SentenceStatus.CANCELLED) is True
    assert s.free_slots["v"] == 1


def test_decode_lists_only_sequences_still_generating():
    s = make(slots=4)
    s.add(1, "v", "a", 0)
    s.add(2, "v", "b", 0)
    plan = s.schedule()
    assert plan.decode == {"v": [1, 2]}  # just admitted: prefill then a first step
    s.on_prefilled(1, num_frames=30, frames_ready=0)  # autoregressive: nothing yet
    s.on_prefilled(2, num_frames=30, frames_ready=30)  # non-AR: all frames at prefill
    assert s.status(1) == SentenceStatus.DECODING
    assert s.status(2) == SentenceStatus.VOCODING
    assert s.schedule().decode == {"v": [1]}
    s.on_frames(1, 30)
    assert s.schedule().decode == {}


def test_chunk_waits_for_right_context():
    s = make()
    s.add(1, "v", "a", 0)
    s.schedule()
    s.on_prefilled(1, num_frames=100, frames_ready=0)
    s.on_frames(1, 13)  # first chunk [0,10) needs frames up to 14
    assert s.schedule().vocode == []
    s.on_frames(1, 14)
    (task,) = s.schedule().vocode
    assert (task.start, task.end, task.window_start, task.window_end) == (0, 10, 0, 14)
    assert task.chunk_index == 0 and not task.last


def test_last_chunk_needs_no_right_context_beyond_the_end():
    s = make()
    s.add(1, "v", "a", 0)
    s.schedule()
    s.on_prefilled(1, num_frames=74, frames_ready=74)
    tasks = []
    while True:
        plan = s.schedule()
        if not plan.vocode:
            break
        (task,) = plan.vocode
        tasks.append(task)
        if s.on_chunk_done(1):
            s.finish(1, SentenceStatus.FINISHED)
    assert [(t.start, t.end) for t in tasks] == [(0, 10), (10, 30), (30, 74)]
    assert tasks[-1].last and tasks[-1].window_end == 74 and tasks[1].window_start == 6
    assert not s.has_work()


def test_new_sessions_first_chunk_goes_before_other_sessions_later_chunks():
    s = make(slots=4, budget=30)
    s.add(1, "v", "A", session_ordinal=0)
    s.schedule(now=0.0)
    s.on_prefilled(1, 100, 100)
    s.on_chunk_done(1, seconds=0.1, now=0.0)  # A is playing, its next chunk is due soon
    s.add(2, "v", "B", session_ordinal=0)  # a new session arrives
    s.schedule(now=0.01)
    s.on_prefilled(2, 100, 100)
    order = [t.request_id for t in s.schedule(now=0.02).vocode]
    # Budget 30 window frames: B's first chunk (14) fits, then A's later chunk (28) does not.
    assert order == [2]


def test_the_sentence_being_sent_goes_before_its_sessions_later_sentences():
    """A pasted paragraph: sentence 1's second chunk must not wait for 2's and 3's first."""
    s = make(slots=4, prefills=4, budget=1000)
    for rid in (1, 2, 3):
        s.add(rid, "v", "A", session_ordinal=rid - 1)
    assert s.schedule(now=0.0).admit == [1]  # later sentences wait while the head is urgent
    s.on_prefilled(1, 100, 100)
    first = s.schedule(now=0.0).vocode
    assert [(t.request_id, t.chunk_index) for t in first] == [(1, 0)]
    s.on_chunk_done(1, seconds=10 * 256 / 22050, now=0.0)
    assert [(t.request_id, t.chunk_index) for t in s.schedule(now=0.05).vocode] == [(1, 1)]


def test_later_sentences_are_prefetched_once_the_client_has_audio_buffered():
    s = make(slots=4, prefills=4)
    for rid in (1, 2):
        s.add(rid, "v", "A", session_ordinal=rid - 1)
    s.schedule(now=0.0)
    s.on_prefilled(1, 100, 100)
    s.on_chunk_done(1, seconds=2.0, now=0.0)  # 2 s of audio out at t=0
    assert s.schedule(now=0.5).admit == [2]  # 1.5 s buffered > 1 s prefetch slack
    s.on_prefilled(2, 100, 100)
    plan = s.schedule(now=0.5)
    # Both have chunks ready; the head's come first.
    assert [t.request_id for t in plan.vocode] == [1, 2]
    # Once the client is short of audio again, only the head's chunks are made.
    assert [t.request_id for t in s.schedule(now=1.5).vocode] == [1]


def test_least_buffered_session_gets_its_later_chunk_first():
    s = make(slots=4, budget=1000)
    for rid, sess in ((1, "A"), (2, "B")):
        s.add(rid, "v", sess, 0)
    s.schedule(now=0.0)
    for rid in (1, 2):
        s.on_prefilled(rid, 200, 200)
    s.on_chunk_done(1, seconds=3.0, now=0.0)  # A has 3 s buffered
    s.on_chunk_done(2, seconds=0.2, now=0.0)  # B has 0.2 s: more urgent
    assert [t.request_id for t in s.schedule(now=0.1).vocode] == [2, 1]


def test_idle_session_restarts_its_playback_clock():
    s = make()
    s.add(1, "v", "A", 0)
    s.schedule(now=0.0)
    s.on_prefilled(1, 10, 10)
    s.on_chunk_done(1, seconds=5.0, now=0.0)
    s.finish(1, SentenceStatus.FINISHED)
    assert "A" not in s.sessions
    s.add(2, "v", "A", 1)
    assert s.sessions["A"].slack(now=1.0) == 0.0


def test_at_least_one_chunk_per_step_even_over_budget():
    s = make(budget=5)
    s.add(1, "v", "a", 0)
    s.schedule()
    s.on_prefilled(1, 100, 100)
    assert len(s.schedule().vocode) == 1


def test_unknown_voice_rejected():
    with pytest.raises(KeyError):
        make().add(1, "nope", "a", 0)
