"""Admission's cost model is calibrated at start-up (server/calibration.py): after the warm-up the
engine speaks a sentence alone and in batches, and the capacity follows the fitted model from the
first session on, before any audio of real load is measured."""

from __future__ import annotations

import pytest

from background import BackgroundServer, free_port
from stream_server.config import AppConfig
from stream_server.server import admission_policy as policy
from stream_server.server.calibration import batch_sizes


def test_batch_sizes_span_one_to_all_slots():
    assert batch_sizes(16) == [1, 4, 16]
    assert batch_sizes(4) == [1, 4]
    assert batch_sizes(1) == [1]


@pytest.mark.slow  # a real server, with the real voice
def test_a_fresh_server_admits_by_its_calibrated_cost_model():
    config = AppConfig.model_validate({
        "server": {"port": free_port()},
        "engine": {"max_slots": 4},  # a short calibration: batches of 1 and 4
        "wyoming": {"enabled": False},
        "cache": {"enabled": False},
        "admission": {"initial_streams": 1, "headroom": 0.8, "max_sessions": 64},
    })
    with BackgroundServer(config) as srv:
        admission = srv.services.admission
        curve = admission.cost_model
        assert curve is not None and [n for n, _ in curve.points] == [1, 4]
        assert all(rtf > 0 for _, rtf in curve.points)
        assert srv.services.engine.stats.recent.audio_seconds == 0  # calibration is not load
        expected = max(1, min(64, curve.streams(0.8)))
        assert admission.capacity() == expected == policy.capacity(admission.limits, admission.measure())
        # the curve, not initial_streams (1), is what a refusal would name
        assert admission.measure().model == curve
