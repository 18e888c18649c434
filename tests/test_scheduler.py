"""The scheduler's policy, driven with fake model outputs (no torch, no model): schedule() gives a
plan, the test plays the executor and hands update() a StepResult."""

from __future__ import annotations

import pytest

from stream_server.engine.chunking import ChunkConfig, chunk_bounds, next_chunk
from stream_server.engine.requests import CancelRequest, Reassign, SentenceRequest, SentenceStatus, SynthesisOptions
from stream_server.engine.scheduler import Scheduler, SchedulerConfig, VoiceSpec
from stream_server.engine.step import Failed, Progress, StepPlan, StepResult, Vocoded

CHUNKS = ChunkConfig(first_chunk_frames=10, chunk_frames=40, left_context=4, right_context=4)


def make(slots=2, prefills=2, budget=1000) -> Scheduler:
    cfg = SchedulerConfig(max_prefills_per_step=prefills, vocoder_frames_per_step=budget)
    return Scheduler(cfg, {"v": VoiceSpec(slots, CHUNKS)})


def add(s: Scheduler, session: str, ordinal: int = 0, voice: str = "v") -> int:
    return s.add(SentenceRequest(session, "default", "text", voice, SynthesisOptions(), ordinal)).request_id


def progress(s: Scheduler, plan: StepPlan, rid: int, ready: int, total: int | None, finished=False, now=0.0):
    return s.update(plan, StepResult(progress=[Progress(rid, ready, total, finished)]), now)


def emit(s: Scheduler, plan: StepPlan, rid: int, seconds: float = 0.0, now: float = 0.0):
    """Play the executor for `rid`'s chunk in `plan`: it was vocoded, `seconds` of audio."""
    (work,) = [w for w in plan.vocode if w.request_id == rid]
    return s.update(plan, StepResult(vocoded=[Vocoded(rid, work.span, seconds)]), now)


def admitted(plan: StepPlan) -> list[int]:
    return [p.request_id for p in plan.prefill]


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


@pytest.mark.parametrize("total", [1, 5, 10, 14, 15, 29, 30, 34, 35, 74, 75, 200])
def test_unknown_length_gets_the_same_chunks_as_known_length(total):
    """A model that stops on EOS: chunks are cut as frames arrive, without knowing the total;
    they must come out exactly as chunk_bounds(total) would cut them."""
    got, start, ready = [], 0, 0
    while True:
        ready = min(total, ready + 3)  # 3 frames per decode step
        known = total if ready == total else None  # the total is learned at the last step
        while (span := next_chunk(CHUNKS, len(got), start, ready, known)) is not None:
            got.append(span)
            start = span.end
        if known is not None:
            break
    assert [(c.start, c.end) for c in got] == chunk_bounds(total, CHUNKS)
    assert got[-1].last and not any(c.last for c in got[:-1])


def test_admission_respects_slots_and_prefill_budget():
    s = make(slots=2, prefills=1)
    r1, r2, r3 = (add(s, f"s{i}") for i in range(3))
    plan = s.schedule()
    assert admitted(plan) == [r1]
    progress(s, plan, r1, 0, 10)  # r1's prefill done
    plan = s.schedule()
    assert admitted(plan) == [r2]
    progress(s, plan, r2, 0, 10)
    assert admitted(s.schedule()) == []  # no slot left
    assert s.num_waiting() == 1 and s.active_slots() == {"v": 2}
    (seq,) = s.cancel(CancelRequest("s0"))
    assert seq.status == SentenceStatus.CANCELLED
    plan = s.schedule()
    assert admitted(plan) == [r3]  # the freed slot is reused at the next step...
    assert [(r.request_id, r.slot) for r in plan.release] == [(r1, plan.prefill[0].slot)]  # ...freed first


def test_prefills_in_flight_hold_back_more_until_they_are_done():
    """A prefill handed to the prepare thread stays PREFILLING over steps: at most
    max_prefills_per_step are in flight, so a later, more urgent sentence never queues behind many."""
    s = make(slots=4, prefills=2)
    r1, r2, r3 = (add(s, f"s{i}") for i in range(3))
    plan = s.schedule()
    assert admitted(plan) == [r1, r2]
    s.update(plan, StepResult())  # nothing came back yet (both still being prepared)
    assert admitted(s.schedule()) == []
    plan = s.schedule()
    progress(s, plan, r1, 0, 10)  # r1 is prepared and loaded
    assert admitted(s.schedule()) == [r3]


def test_scheduler_owns_the_slots_it_hands_out():
    s = make(slots=3, prefills=3)
    for i in range(3):
        add(s, f"s{i}")
    plan = s.schedule()
    assert sorted(p.slot for p in plan.prefill) == [0, 1, 2]
    assert {s.sequences[p.request_id].slot for p in plan.prefill} == {0, 1, 2}


def test_head_goes_before_a_later_sentence_of_its_own_and_others():
    s = make(slots=1, prefills=1)
    r1 = add(s, "A", 0)
    plan = s.schedule()
    progress(s, plan, r1, 10, 10, finished=True)
    r2 = add(s, "A", 1)  # A's second sentence, arrived first
    r3 = add(s, "B", 0)  # B's first sentence, arrived later
    plan = s.schedule()
    emit(s, plan, r1)  # r1's only chunk: it finishes and frees the slot
    assert admitted(s.schedule()) == [r3]  # B's first sentence goes first...
    plan = s.schedule()
    progress(s, plan, r3, 5, 5, finished=True)
    emit(s, s.schedule(), r3)
    assert admitted(s.schedule()) == [r2]  # ...then A's next sentence (now its head)


def test_waiting_sentence_cancelled_frees_no_slot():
    s = make(slots=1)
    add(s, "a")
    add(s, "b")
    s.schedule()
    s.cancel(CancelRequest("b"))
    assert s.active_slots() == {"v": 1} and s.schedule().release == []
    s.cancel(CancelRequest("a"))
    assert s.active_slots() == {"v": 0} and len(s.schedule().release) == 1


def test_cancel_matches_session_and_context():
    s = make(slots=4, prefills=4)
    keep = s.add(SentenceRequest("a", "c2", "x", "v", SynthesisOptions(), 0)).request_id
    drop = s.add(SentenceRequest("a", "c1", "x", "v", SynthesisOptions(), 1)).request_id
    other = s.add(SentenceRequest("b", "c1", "x", "v", SynthesisOptions(), 0)).request_id
    assert [q.request_id for q in s.cancel(CancelRequest("a", "c1"))] == [drop]
    assert set(s.sequences) == {keep, other}


def test_decode_lists_only_sequences_still_generating():
    s = make(slots=4)
    r1, r2 = add(s, "a"), add(s, "b")
    plan = s.schedule()
    (work,) = plan.decode  # just admitted: prefill, then a first step in the same iteration
    assert work.request_ids == (r1, r2) and work.slots == tuple(p.slot for p in plan.prefill)
    result = StepResult(progress=[Progress(r1, 0, 30, False), Progress(r2, 30, 30, True)])
    s.update(plan, result)  # r1: autoregressive, nothing yet; r2: non-AR, all frames at prefill
    assert s.sequences[r1].status == SentenceStatus.DECODING
    assert s.sequences[r2].status == SentenceStatus.VOCODING
    (work,) = s.schedule().decode
    assert work.request_ids == (r1,)
    progress(s, plan, r1, 30, 30, finished=True)
    assert s.schedule().decode == []


def test_eos_sets_the_total_and_the_last_chunk():
    """A sampled model: no total at prefill; the decode step that ends it sets the total."""
    s = make()
    r = add(s, "a")
    plan = s.schedule()
    progress(s, plan, r, 0, None)
    progress(s, plan, r, 15, None)  # first chunk [0,10) needs 14 frames and 5 past its end
    (work,) = s.schedule().vocode
    assert (work.span.start, work.span.end, work.span.last) == (0, 10, False)
    emit(s, s.schedule(), r)
    progress(s, plan, r, 19, None, finished=True)  # EOS: 19 frames in all
    assert s.sequences[r].total == 19 and s.sequences[r].status == SentenceStatus.VOCODING
    (work,) = s.schedule().vocode
    assert (work.span.start, work.span.end, work.span.last) == (10, 19, True)
    (done,) = emit(s, s.schedule(), r)
    assert done.status == SentenceStatus.FINISHED and not s.sequences
    assert [x.request_id for x in s.schedule().release] == [r]


def test_empty_sentence_gets_one_empty_closing_chunk():
    s = make()
    r = add(s, "a")
    plan = s.schedule()
    progress(s, plan, r, 0, 0, finished=True)
    (work,) = s.schedule().vocode
    assert work.span.window_frames == 0 and work.span.last
    (done,) = emit(s, s.schedule(), r)
    assert done.status == SentenceStatus.FINISHED


def test_failure_retires_the_sentence_and_frees_its_slot():
    s = make(slots=1)
    r = add(s, "a")
    plan = s.schedule()
    (done,) = s.update(plan, StepResult(failed=[Failed(r, "synthesis_failed", "boom")]))
    assert done.status == SentenceStatus.FAILED and r not in s.sequences
    assert [x.request_id for x in s.schedule().release] == [r]


def test_fail_in_flight_fails_admitted_sentences_only():
    s = make(slots=1)
    r1, r2 = add(s, "a"), add(s, "b")
    s.schedule()
    assert [q.request_id for q in s.fail_in_flight()] == [r1]
    assert list(s.sequences) == [r2] and admitted(s.schedule()) == [r2]


def test_chunk_waits_for_right_context():
    s = make()
    r = add(s, "a")
    plan = s.schedule()
    progress(s, plan, r, 0, 100)
    progress(s, plan, r, 13, 100)  # first chunk [0,10) needs frames up to 14
    assert s.schedule().vocode == []
    progress(s, plan, r, 14, 100)
    (work,) = s.schedule().vocode
    span = work.span
    assert (span.start, span.end, span.window_start, span.window_end) == (0, 10, 0, 14)
    assert span.index == 0 and not span.last


def test_last_chunk_needs_no_right_context_beyond_the_end():
    s = make()
    r = add(s, "a")
    plan = s.schedule()
    progress(s, plan, r, 74, 74, finished=True)
    spans = []
    while r in s.sequences:
        plan = s.schedule()
        (work,) = plan.vocode
        spans.append(work.span)
        emit(s, plan, r)
    assert [(t.start, t.end) for t in spans] == [(0, 10), (10, 30), (30, 74)]
    assert spans[-1].last and spans[-1].window_end == 74 and spans[1].window_start == 6
    assert s.schedule().release and not s.has_work()


def test_new_sessions_first_chunk_goes_before_other_sessions_later_chunks():
    s = make(slots=4, budget=30)
    r1 = add(s, "A", 0)
    plan = s.schedule(now=0.0)
    progress(s, plan, r1, 100, 100, finished=True)
    emit(s, s.schedule(now=0.0), r1, seconds=0.1, now=0.0)  # A is playing, its next chunk is due soon
    r2 = add(s, "B", 0)  # a new session arrives
    plan = s.schedule(now=0.01)
    progress(s, plan, r2, 100, 100, finished=True)
    order = [w.request_id for w in s.schedule(now=0.02).vocode]
    # Budget 30 window frames: B's first chunk (14) fits, then A's later chunk (28) does not.
    assert order == [r2]


def test_the_sentence_being_sent_goes_before_its_sessions_later_sentences():
    """A pasted paragraph: sentence 1's second chunk must not wait for 2's and 3's first."""
    s = make(slots=4, prefills=4, budget=1000)
    r1, _, _ = (add(s, "A", i) for i in range(3))
    plan = s.schedule(now=0.0)
    assert admitted(plan) == [r1]  # later sentences wait while the head is urgent
    progress(s, plan, r1, 100, 100, finished=True)
    first = s.schedule(now=0.0)
    assert [(w.request_id, w.span.index) for w in first.vocode] == [(r1, 0)]
    emit(s, first, r1, seconds=10 * 256 / 22050, now=0.0)
    assert [(w.request_id, w.span.index) for w in s.schedule(now=0.05).vocode] == [(r1, 1)]


def test_later_sentences_are_prefetched_once_the_client_has_audio_buffered():
    s = make(slots=4, prefills=4)
    r1, r2 = add(s, "A", 0), add(s, "A", 1)
    plan = s.schedule(now=0.0)
    progress(s, plan, r1, 100, 100, finished=True)
    emit(s, s.schedule(now=0.0), r1, seconds=2.0, now=0.0)  # 2 s of audio out at t=0
    plan = s.schedule(now=0.5)
    assert admitted(plan) == [r2]  # 1.5 s buffered > 1 s prefetch slack
    progress(s, plan, r2, 100, 100, finished=True)
    # Both have chunks ready; the head's come first.
    assert [w.request_id for w in s.schedule(now=0.5).vocode] == [r1, r2]
    # Once the client is short of audio again, only the head's chunks are made.
    assert [w.request_id for w in s.schedule(now=1.5).vocode] == [r1]


def test_least_buffered_session_gets_its_later_chunk_first():
    s = make(slots=4, budget=1000)
    r1, r2 = add(s, "A"), add(s, "B")
    plan = s.schedule(now=0.0)
    for r in (r1, r2):
        progress(s, plan, r, 200, 200, finished=True)
    plan = s.schedule(now=0.0)
    emit(s, plan, r1, seconds=3.0, now=0.0)  # A has 3 s buffered
    emit(s, plan, r2, seconds=0.2, now=0.0)  # B has 0.2 s: more urgent
    assert [w.request_id for w in s.schedule(now=0.1).vocode] == [r2, r1]


def test_idle_session_restarts_its_playback_clock():
    s = make()
    r = add(s, "A", 0)
    plan = s.schedule(now=0.0)
    progress(s, plan, r, 10, 10, finished=True)
    emit(s, s.schedule(now=0.0), r, seconds=5.0, now=0.0)
    assert "A" not in s.sessions
    add(s, "A", 1)
    assert s.sessions["A"].slack(now=1.0) == 0.0


def test_at_least_one_chunk_per_step_even_over_budget():
    s = make(budget=5)
    r = add(s, "a")
    plan = s.schedule()
    progress(s, plan, r, 100, 100, finished=True)
    assert len(s.schedule().vocode) == 1


def test_unknown_voice_rejected():
    with pytest.raises(KeyError):
        add(make(), "a", voice="nope")


def test_reassigned_sentence_takes_its_new_owners_place():
    """A synthesis shared by two sessions (the sentence cache) follows the session it now serves."""
    s = make(slots=1, prefills=1)
    add(s, "C", 0)
    s.schedule()  # C holds the only slot
    a0, shared = add(s, "A", 0), add(s, "A", 4)  # the shared sentence is A's fifth
    b_later = add(s, "B", 1)
    assert not s.is_head(s.sequences[shared])
    owner = SentenceRequest("B", "ctx", "text", "v", SynthesisOptions(), 0)
    s.reassign(Reassign(shared, owner))
    seq = s.sequences[shared]
    assert (seq.session_id, seq.request.context_id, seq.request.session_ordinal) == ("B", "ctx", 0)
    assert s.is_head(seq) and not s.is_head(s.sequences[b_later])
    assert shared not in s.sessions["A"].live and shared in s.sessions["B"].live
    s.cancel(CancelRequest("C"))
    plan = s.schedule()
    assert admitted(plan) == [a0]  # heads by arrival: A's head came first...
    s.update(plan, StepResult(failed=[Failed(a0, "synthesis_failed", "x")]))
    assert admitted(s.schedule()) == [shared]  # ...then B's, the reassigned one, before B's later one


def test_a_playing_session_short_of_audio_is_flagged_in_the_plan():
    s = make(slots=2, prefills=2)
    r1 = add(s, "a")
    plan = s.schedule(now=0.0)
    assert not plan.short_of_audio  # nothing playing yet
    progress(s, plan, r1, 40, 40, finished=True)
    plan = s.schedule(now=0.0)
    emit(s, plan, r1, seconds=0.5, now=0.0)  # playing, 0.5 s buffered
    r2 = add(s, "a", 1)
    assert not s.schedule(now=0.1).short_of_audio  # 0.4 s left
    assert s.schedule(now=0.45).short_of_audio  # 0.05 s left: below urgent_slack_seconds
    s2 = make(slots=2, prefills=2)
    q1 = add(s2, "b")
    plan = s2.schedule(now=0.0)
    progress(s2, plan, q1, 40, 80)
    plan = s2.schedule(now=0.0)
    emit(s2, plan, q1, seconds=5.0, now=0.0)  # 5 s buffered
    assert not s2.schedule(now=0.1).short_of_audio
    assert r2


def test_a_shared_generator_runs_its_sentences_one_after_another_each_vocoded_whole():
    """api_v2 with a fixed seed: a session's sentences on one generator (SynthesisOptions.shared_rng)
    are admitted one at a time, never before the one before made all its frames, and each is
    vocoded as one chunk once its own frames are made; other sessions are admitted meanwhile."""
    s = make(slots=4)
    shared = SynthesisOptions(shared_rng=("request-1", 7))
    first, second, third = (s.add(SentenceRequest("a", "default", "text", "v", shared, i)).request_id
                            for i in range(3))
    other = add(s, "b")
    plan = s.schedule()
    assert admitted(plan) == [first, other]
    plan = s.schedule()
    progress(s, plan, first, 30, None)
    plan = s.schedule()
    assert admitted(plan) == [] and [w.request_id for w in plan.vocode] == []  # frames so far: no chunk yet
    progress(s, plan, first, 31, None, finished=True)
    plan = s.schedule()
    (work,) = [w for w in plan.vocode if w.request_id == first]
    assert (work.span.start, work.span.end, work.span.window_start, work.span.window_end) == (0, 31, 0, 31)
    assert work.span.last
    assert admitted(plan) == []  # not a head yet, and its session has no audio buffered
    s.cancel(CancelRequest("b"))  # no other session short of audio...
    emit(s, plan, first, seconds=10.0)  # ...and 10 s buffered: later sentences may be prefetched...
    plan = s.schedule()
    assert admitted(plan) == [second]  # ...but the third waits for the second's frames
    progress(s, plan, second, 12, None, finished=True)
    assert admitted(s.schedule()) == [third]
