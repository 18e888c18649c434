"""The admission policy alone (server/admission_policy.py), with made-up figures: how the measured
RTF becomes a capacity, and what is refused with what."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_server.engine.stats import RecentRtf
from stream_server.server.admission_policy import (
    OVERLOADED,
    TOO_MANY_QUEUED,
    AdmissionLimits,
    CostCurve,
    Load,
    Measure,
    admit_session,
    admit_text,
    capacity,
    is_active,
)

LIMITS = AdmissionLimits(max_sessions=10, max_queued_sentences=4, headroom=1.0, initial_streams=3,
                         min_measured_audio_seconds=10, idle_release_seconds=30, retry_after_seconds=5)
UNMEASURED = Measure(None, 0.0)


def measured(rtf: float) -> Measure:
    return Measure(rtf, 30.0)


def test_capacity_is_the_initial_estimate_until_enough_audio_is_measured():
    assert capacity(LIMITS, UNMEASURED) == 3
    assert capacity(LIMITS, Measure(0.01, 9.9)) == 3  # fast, but on too little audio to say
    assert capacity(LIMITS, Measure(0.01, 10.0)) == 10  # then measured (here: max_sessions)


def test_capacity_is_the_real_time_streams_the_engine_sustains_times_the_headroom():
    assert capacity(LIMITS, measured(0.25)) == 4  # 1 / 0.25 streams
    assert capacity(LIMITS, measured(0.3)) == 3  # 3.33, rounded down
    assert capacity(AdmissionLimits(**{**LIMITS.__dict__, "headroom": 0.5}), measured(0.25)) == 2
    assert capacity(LIMITS, measured(2.0)) == 1  # slower than real time: still one session


def test_a_session_past_capacity_is_refused_overloaded_with_a_retry_hint():
    assert admit_session(LIMITS, Load(3, 2), measured(0.25)).admitted
    refused = admit_session(LIMITS, Load(4, 4), measured(0.25))
    assert not refused.admitted
    assert (refused.code, refused.reason, refused.retry_after) == (OVERLOADED, "capacity", 5)
    assert "4 sessions are being served" in refused.message and "RTF 0.250" in refused.message
    assert "try again in 5 s" in refused.message


def test_idle_sessions_do_not_count_against_capacity_but_against_max_sessions():
    assert admit_session(LIMITS, Load(9, 1), measured(0.25)).admitted  # 8 idle sessions
    refused = admit_session(LIMITS, Load(10, 0), measured(0.25))
    assert (refused.admitted, refused.code, refused.reason) == (False, OVERLOADED, "max_sessions")
    assert "admission.max_sessions" in refused.message


def test_an_active_session_always_gets_its_text_while_its_queue_has_room():
    full = Load(10, 9)  # far past capacity: it was admitted before, it goes on
    assert admit_text(LIMITS, full, measured(0.25), active=True, queued_sentences=3).admitted
    refused = admit_text(LIMITS, Load(0, 0), measured(0.25), active=True, queued_sentences=4)
    assert (refused.admitted, refused.code, refused.retry_after) == (False, TOO_MANY_QUEUED, None)
    assert "admission.max_queued_sentences" in refused.message


def test_a_session_back_from_idle_is_admitted_again_only_within_capacity():
    assert admit_text(LIMITS, Load(5, 3), measured(0.25), active=False, queued_sentences=0).admitted
    refused = admit_text(LIMITS, Load(5, 4), measured(0.25), active=False, queued_sentences=0)
    assert (refused.admitted, refused.code, refused.reason) == (False, OVERLOADED, "capacity")


def test_nothing_is_refused_when_admission_is_off():
    off = AdmissionLimits(enabled=False, max_sessions=1, max_queued_sentences=1)
    assert admit_session(off, Load(100, 100), measured(5.0)).admitted
    assert admit_text(off, Load(100, 100), measured(5.0), active=False, queued_sentences=100).admitted


def test_a_session_is_load_while_it_has_work_or_was_recently_busy():
    assert is_active(LIMITS, has_work=True, idle_seconds=1000)
    assert is_active(LIMITS, has_work=False, idle_seconds=29.9)
    assert not is_active(LIMITS, has_work=False, idle_seconds=30)


@given(active=st.integers(0, 200), rtf=st.floats(0.001, 10.0), audio=st.floats(0, 100))
def test_a_session_is_admitted_exactly_while_active_sessions_are_below_capacity(active, rtf, audio):
    measure = Measure(rtf, audio)
    most = capacity(LIMITS, measure)
    assert 1 <= most <= LIMITS.max_sessions
    decision = admit_session(LIMITS, Load(min(active, LIMITS.max_sessions - 1), active), measure)
    assert decision.admitted == (active < most)


def test_the_recent_rtf_follows_the_latest_audio():
    recent = RecentRtf()
    assert recent.rtf is None
    for _ in range(100):  # 50 s of audio at RTF 1.0
        recent = recent.add(0.5, 0.5, window=10.0)
    assert abs(recent.rtf - 1.0) < 1e-9 and abs(recent.audio_seconds - 10.0) < 0.3
    for _ in range(100):  # then 50 s at RTF 0.2: five windows later, the old load has faded
        recent = recent.add(0.1, 0.5, window=10.0)
    assert abs(recent.rtf - 0.2) < 0.01
    assert recent.add(1.0, 0.0, window=10.0).audio_seconds == recent.audio_seconds  # a step without audio


# --- the calibrated cost curve -----------------------------------------------------------------
CURVE = CostCurve(((1, 0.09), (4, 0.05), (16, 0.04)))  # RTF alone, at 4 and at 16 in flight


def test_the_cost_curve_interpolates_in_one_over_n_and_holds_past_its_points():
    assert CURVE.rtf_at(1) == 0.09 and CURVE.rtf_at(0.5) == 0.09
    assert abs(CURVE.rtf_at(2) - (0.09 + (1 - 1 / 2) / (1 - 1 / 4) * (0.05 - 0.09))) < 1e-12
    assert CURVE.rtf_at(4) == 0.05 and CURVE.rtf_at(16) == 0.04
    assert 0.04 < CURVE.rtf_at(8) < 0.05
    assert CURVE.rtf_at(100) == 0.04  # no more batching gain than was measured
    # 0.04 n <= 0.8 -> n <= 20; on a machine x2 slower, 9 x 0.0426 x 2 = 0.77 (10 would be 0.84)
    assert CURVE.streams(0.8) == 20 and CURVE.streams(0.8, 2.0) == 9
    assert CostCurve(((1, 2.0),)).streams(0.8) == 0  # slower than real time even alone
    with pytest.raises(ValueError):
        CostCurve(())


def test_with_a_curve_the_capacity_holds_from_the_first_second():
    limits = AdmissionLimits(**{**LIMITS.__dict__, "max_sessions": 64, "headroom": 0.8})
    assert capacity(limits, Measure(None, 0.0, model=CURVE)) == 20  # before any audio is measured
    # the measured RTF, at the concurrency it was measured at, as the curve says: no change
    assert capacity(limits, Measure(CURVE.rtf_at(2.0), 30.0, 2.0, CURVE)) == 20
    # a machine twice as slow as at calibration: the curve scaled x2
    assert capacity(limits, Measure(2 * CURVE.rtf_at(3.0), 30.0, 3.0, CURVE)) == 9
    # the measure moves it at most x4 (a burst of one-off costs must not shut the door)
    assert capacity(limits, Measure(100.0, 30.0, 1.0, CURVE)) == 4  # 4 x 0.05 x 4 = 0.8
    # too little audio measured: the curve alone; max_sessions still caps it
    assert capacity(limits, Measure(5.0, 1.0, 1.0, CURVE)) == 20
    assert capacity(AdmissionLimits(**{**limits.__dict__, "max_sessions": 8}), Measure(None, 0.0, model=CURVE)) == 8


def test_a_refusal_names_the_cost_curve():
    limits = AdmissionLimits(**{**LIMITS.__dict__, "max_sessions": 64, "headroom": 0.8})
    refused = admit_session(limits, Load(20, 20), Measure(None, 0.0, model=CURVE))
    assert not refused.admitted and refused.reason == "capacity"
    assert "calibrated engine RTF 0.090 at 1, 0.050 at 4, 0.040 at 16" in refused.message


def test_the_recent_measure_keeps_the_prepare_threads_time_and_the_concurrency():
    recent = RecentRtf().add(0.2, 1.0, window=30.0, prepare=0.5, live=4)
    assert abs(recent.rtf - 0.5) < 1e-9  # the busier of the engine and prepare threads
    assert abs(recent.concurrency - 4.0) < 1e-9
    recent = recent.add(0.2, 1.0, window=30.0, prepare=0.0, live=2)
    assert 2.0 < recent.concurrency < 4.0
