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
    assert chunk_bounds(100, CHUNKS) == [(0, 10), (10, 50), (50, 90), (90, 100)]
    # A remainder under half a first chunk folds into the chunk before it.
    assert chunk_bounds(94, CHUNKS) == [(0, 10), (10, 50), (50, 94)]
    assert chunk_bounds(0, CHUNKS) == []


def test_admission_respects_slots_and_prefill_budget():
    s = make(slots=2, prefills=1)
    for rid in (1, 2, 3):
        s.add(rid, "v", session_ordinal=0)
    assert s.schedule().admit == [1]
    assert s.schedule().admit == [2]
    assert s.schedule().admit == []  # no slot left
    assert s.num_waiting() == 1
    assert s.finish(1, SentenceStatus.FINISHED) is True
    assert s.schedule().admit == [3]  # the freed slot is reused at the next step


def test_first_sentence_of_a_session_goes_ahead_of_later_sentences():
    s = make(slots=1, prefills=1)
    s.add(1, "v", session_ordinal=0)
    s.schedule()  # 1 takes the only slot
    s.add(2, "v", session_ordinal=1)  # session A's second sentence, arrived first
    s.add(3, "v", session_ordinal=2)
    s.add(4, "v", session_ordinal=0)  # session B's first sentence, arrived later
    s.finish(1, SentenceStatus.FINISHED)
    assert s.schedule().admit == [4]
    s.finish(4, SentenceStatus.FINISHED)
    assert s.schedule().admit == [2]


def test_waiting_sentence_cancelled_frees_no_slot():
    s = make(slots=1)
    s.add(1, "v", 0)
    s.add(2, "v", 0)
    s.schedule()
    assert s.finish(2, SentenceStatus.CANCELLED) is False
    assert s.free_slots["v"] == 0
    assert s.finish(1, SentenceStatus.CANCELLED) is True
    assert s.free_slots["v"] == 1


def test_decode_lists_only_sequences_still_generating():
    s = make(slots=4)
    s.add(1, "v", 0)
    s.add(2, "v", 0)
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
    s.add(1, "v", 0)
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
    s.add(1, "v", 0)
    s.schedule()
    s.on_prefilled(1, num_frames=94, frames_ready=94)
    tasks = []
    while True:
        plan = s.schedule()
        if not plan.vocode:
            break
        (task,) = plan.vocode
        tasks.append(task)
        if s.on_chunk_done(1):
            s.finish(1, SentenceStatus.FINISHED)
    assert [(t.start, t.end) for t in tasks] == [(0, 10), (10, 50), (50, 94)]
    assert tasks[-1].last and tasks[-1].window_end == 94 and tasks[1].window_start == 6
    assert not s.has_work()


def test_first_chunks_go_before_later_chunks_and_first_sentences_first():
    s = make(slots=4, budget=60)
    s.add(1, "v", session_ordinal=0)
    s.schedule()
    s.on_prefilled(1, 100, 100)
    s.on_chunk_done(1)  # sentence 1 is past its first chunk
    s.add(2, "v", session_ordinal=3)  # a later sentence of some session
    s.add(3, "v", session_ordinal=0)  # another session's first sentence
    s.schedule()
    s.on_prefilled(2, 100, 100)
    s.on_prefilled(3, 100, 100)
    order = [t.request_id for t in s.schedule().vocode]
    # Budget 60 window frames: first chunks (14 each) fit, sentence 1's later chunk (48) does not.
    assert order == [3, 2]


def test_at_least_one_chunk_per_step_even_over_budget():
    s = make(budget=5)
    s.add(1, "v", 0)
    s.schedule()
    s.on_prefilled(1, 100, 100)
    assert len(s.schedule().vocode) == 1


def test_unknown_voice_rejected():
    with pytest.raises(KeyError):
        make().add(1, "nope", 0)
