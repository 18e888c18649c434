"""Admission control on the running server: the policy (admission_policy.py) fed with live figures,
the engine's recent RTF (engine/stats.py, written by the engine thread) and the open sessions, its
refusals raised as SessionError. The session envelope (services.py) asks it before a session
starts and before each text a session takes, so every protocol gets the same answers, each on its
own wire (`overloaded` with a retry hint; docs/limits.md, "Admission")."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from ..config import AdmissionSection
from ..engine.stats import RecentRtf
from . import admission_policy as policy
from .events import SessionError
from .metrics import Metrics
from .session import Session


def limits_of(section: AdmissionSection) -> policy.AdmissionLimits:
    """The policy's limits from the config (window_audio_seconds is the engine stats' setting)."""
    return policy.AdmissionLimits(**section.model_dump(exclude={"window_audio_seconds", "calibrate"}))


@dataclass
class Admission:
    limits: policy.AdmissionLimits
    recent: Callable[[], RecentRtf]  # the engine's recent RTF, as its thread last left it
    metrics: Metrics
    cost_model: policy.CostCurve | None = None  # calibrated at start-up (server/calibration.py)
    last_text: dict[str, float] = field(default_factory=dict)  # session id -> when it last sent text

    def measure(self) -> policy.Measure:
        recent = self.recent()
        return policy.Measure(recent.rtf, recent.audio_seconds, recent.concurrency, self.cost_model)

    def capacity(self) -> int:
        return policy.capacity(self.limits, self.measure())

    def is_active(self, session: Session, now: float) -> bool:
        """Load: sentences to speak or audio to send, or text or output in the last
        idle_release_seconds (a session's clock of output starts at its open, so a new session is
        load at once). Text waiting for its sentence's end is load only as long as it is recent:
        a client that leaves half a sentence and sends nothing (or only white space, or keepalives)
        stops being load."""
        has_work = not session.is_idle()
        last = max(session.last_output_at, self.last_text.get(session.session_id, 0.0))
        return policy.is_active(self.limits, has_work, now - last)

    def load(self, sessions: Collection[Session], asking: Session | None = None) -> policy.Load:
        now = time.monotonic()
        others = [s for s in sessions if s is not asking]
        return policy.Load(len(others), sum(self.is_active(s, now) for s in others))

    def check_session(self, sessions: Collection[Session]) -> None:
        """Before a new session starts (raises SessionError when refused)."""
        self._enforce(policy.admit_session(self.limits, self.load(sessions), self.measure()))

    def check_text(self, session: Session, sessions: Collection[Session], speakable: bool = True) -> None:
        """Before a session takes more text (raises SessionError when refused). Only speakable
        text is activity; white space that may end a waiting sentence is asked about all the
        same (it would start work), but keeps no session load."""
        now = time.monotonic()
        decision = policy.admit_text(
            self.limits, self.load(sessions, session), self.measure(),
            active=self.is_active(session, now), queued_sentences=session.queued_sentences(),
        )
        self._enforce(decision)
        if speakable:
            self.last_text[session.session_id] = now

    def forget(self, session: Session) -> None:
        self.last_text.pop(session.session_id, None)

    def publish(self, sessions: Collection[Session]) -> None:
        """The admission gauges, as of now (at each scrape)."""
        m = self.metrics
        m.admission_active.set(self.load(sessions).active_sessions)
        m.admission_capacity.set(self.capacity() if self.limits.enabled else float("inf"))
        m.queued_session_sentences.set(sum(s.queued_sentences() for s in sessions))

    def _enforce(self, decision: policy.Decision) -> None:
        if not decision.admitted:
            self.metrics.admission_refusals.labels(decision.reason).inc()
            raise SessionError(decision.code, decision.message, decision.retry_after)


# --- how adapters answer a refused session ---------------------------------------------------------
CLOSE_TRY_AGAIN_LATER = 1013  # WebSocket close code: the server is overloaded


def try_again_later(error: SessionError) -> bool:
    """A refusal that is the server's state, not the request's fault (HTTP 503, not 400)."""
    return error.code in ("shutting_down", policy.OVERLOADED)


def ws_close_code(error: SessionError) -> int:
    """The close code after a session refused at its start: going away (shutting down), try again
    later (overloaded), normal closure (a session closed for silence: idle_timeout), else policy
    violation (bad settings, a malformed message)."""
    if error.code == "shutting_down":
        return 1001
    if error.code == "idle_timeout":
        return 1000
    return CLOSE_TRY_AGAIN_LATER if error.code == policy.OVERLOADED else 1008


def retry_after_headers(error: SessionError) -> dict[str, str]:
    """HTTP's Retry-After (whole seconds) for a refusal that has a retry hint."""
    if error.retry_after is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
