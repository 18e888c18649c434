"""Admission policy: may a new session, or an idle session's new text, be served without pushing
the sessions already served into stalls? Plain numbers in, a Decision out (no torch, no asyncio):
server/admission.py feeds it the server's live figures; tests feed it made-up ones.

Capacity is measured, not guessed: the engine's recent real-time factor (RTF, engine compute
seconds per second of audio, over roughly the last half minute of audio) says how many real-time
streams the engine sustains, 1 / RTF. Times `headroom`, rounded down, at least one, that is how many
sessions may be *active* at once. A session is active (it is load) while it has text to speak or
audio to send, and for `idle_release_seconds` after its last text or audio; a new session is active
from its open. Until enough audio has been measured (`min_measured_audio_seconds`), the capacity is
`initial_streams`.

With a cost curve (calibrated at start-up by batched syntheses, server/calibration.py) the capacity
follows how the engine's cost per stream falls with batch size: n real-time streams cost n * RTF(n)
engine seconds per second, so the engine sustains the most n with n * RTF(n) <= headroom, from its
first second. The measured RTF then only scales the curve (a machine slower than at calibration, or
busy with other work, has a higher RTF at the same concurrency than the curve says), so a measure
taken at low load no longer reads as low capacity (docs/limits.md, "Admission").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

OVERLOADED = "overloaded"  # the server is at capacity: try again later (retry_after)
TOO_MANY_QUEUED = "too_many_queued_sentences"  # this session's own queue: read its audio first


@dataclass(frozen=True)
class AdmissionLimits:
    enabled: bool = True
    max_sessions: int = 64  # open sessions, active or idle
    max_queued_sentences: int = 64  # per session: sentences accepted and not yet sent in full
    headroom: float = 0.8  # times the measured real-time streams: < 1 keeps capacity spare
    initial_streams: float = 2.0  # the capacity until enough audio has been measured
    min_measured_audio_seconds: float = 10.0
    idle_release_seconds: float = 30.0  # an idle session stops counting as load after this long
    retry_after_seconds: float = 5.0  # the hint given with a refusal


@dataclass(frozen=True)
class CostCurve:
    """The engine's RTF (engine seconds per second of audio) with n sentences in flight, measured at
    a few n (calibration): between them it is interpolated linearly in 1 / n (a step's cost is
    shared by its batch: RTF ~ a / n + b), below the least n it is the least n's, past the most
    n it stays the most n's (no more batching gain is assumed than was measured)."""

    points: tuple[tuple[int, float], ...]  # (n, RTF at n), n ascending

    def __post_init__(self) -> None:
        if not self.points or any(n < 1 or rtf <= 0 for n, rtf in self.points):
            raise ValueError(f"a cost curve needs points (n >= 1, RTF > 0), got {self.points}")

    def rtf_at(self, n: float) -> float:
        pts = self.points
        if n <= pts[0][0]:
            return pts[0][1]
        for (n0, r0), (n1, r1) in zip(pts, pts[1:]):
            if n <= n1:
                t = (1 / n0 - 1 / n) / (1 / n0 - 1 / n1)
                return r0 + t * (r1 - r0)
        return pts[-1][1]

    def streams(self, headroom: float, scale: float = 1.0, most: int = 4096) -> int:
        """Most real-time streams n (up to `most`) with n * RTF(n) * scale <= headroom (0 if none)."""
        best = 0
        for n in range(1, most + 1):
            if n * self.rtf_at(n) * scale <= headroom:
                best = n
            elif n > self.points[-1][0]:  # past the measured points n * RTF only grows
                break
        return best


@dataclass(frozen=True)
class Measure:
    """The engine's recent RTF (None: nothing measured), how much audio it is over and the mean
    concurrency it was measured at; the calibrated cost curve, if any."""

    rtf: float | None
    audio_seconds: float
    concurrency: float | None = None
    model: CostCurve | None = None


@dataclass(frozen=True)
class Load:
    """The sessions open now, and how many of them are active (the one asking not included)."""

    open_sessions: int
    active_sessions: int


@dataclass(frozen=True)
class Decision:
    admitted: bool
    code: str = ""  # OVERLOADED or TOO_MANY_QUEUED when refused
    reason: str = ""  # what refused it (a metrics label): max_sessions, capacity, queued_sentences
    message: str = ""
    retry_after: float | None = None  # seconds, with OVERLOADED


ADMIT = Decision(True)


def is_active(limits: AdmissionLimits, has_work: bool, idle_seconds: float) -> bool:
    """Whether a session counts as load: work in hand, or idle for less than the release time."""
    return has_work or idle_seconds < limits.idle_release_seconds


def is_measured(limits: AdmissionLimits, measure: Measure) -> bool:
    return bool(measure.rtf) and measure.audio_seconds >= limits.min_measured_audio_seconds


MODEL_SCALE = (0.5, 4.0)  # how far the measured RTF may move the calibrated model, each way


def model_scale(limits: AdmissionLimits, measure: Measure) -> float:
    """The measured RTF over the model's at the measured concurrency (1 until measured)."""
    rtf = measure.rtf
    if measure.model is None or not rtf or not is_measured(limits, measure) or not measure.concurrency:
        return 1.0
    ratio = rtf / measure.model.rtf_at(measure.concurrency)
    return min(MODEL_SCALE[1], max(MODEL_SCALE[0], ratio))


def sustained_streams(limits: AdmissionLimits, measure: Measure) -> float:
    """Real-time streams the engine sustains, with the headroom applied."""
    if measure.model is not None:
        return measure.model.streams(limits.headroom, model_scale(limits, measure), limits.max_sessions)
    rtf = measure.rtf
    if not rtf or not is_measured(limits, measure):
        return limits.initial_streams
    return limits.headroom / rtf


def capacity(limits: AdmissionLimits, measure: Measure) -> int:
    """Sessions that may be active at once: at least one, at most max_sessions."""
    streams = math.floor(sustained_streams(limits, measure) + 1e-9)
    return max(1, min(limits.max_sessions, streams))


def admit_session(limits: AdmissionLimits, load: Load, measure: Measure) -> Decision:
    """A new session (it is active from its open)."""
    if not limits.enabled:
        return ADMIT
    if load.open_sessions >= limits.max_sessions:
        return _overloaded(
            limits, "max_sessions",
            f"{load.open_sessions} sessions are open, the limit (admission.max_sessions)",
        )
    return _within_capacity(limits, load, measure)


def admit_text(
    limits: AdmissionLimits, load: Load, measure: Measure, *, active: bool, queued_sentences: int
) -> Decision:
    """More text for a session: its own queue must have room, and a session that had gone idle
    (no longer counted as load) comes back only if the capacity allows."""
    if not limits.enabled:
        return ADMIT
    if queued_sentences >= limits.max_queued_sentences:
        message = (
            f"{queued_sentences} sentences of this session are still to be spoken and sent, the limit "
            f"(admission.max_queued_sentences); read the audio sent so far, or cancel, then send more"
        )
        return Decision(False, TOO_MANY_QUEUED, "queued_sentences", message)
    return ADMIT if active else _within_capacity(limits, load, measure)


def _within_capacity(limits: AdmissionLimits, load: Load, measure: Measure) -> Decision:
    most = capacity(limits, measure)
    if load.active_sessions + 1 <= most:
        return ADMIT
    if measure.model is not None:
        curve = ", ".join(f"{rtf:.3f} at {n}" for n, rtf in measure.model.points)
        how = (f"calibrated engine RTF {curve}, x{model_scale(limits, measure):.2f} as measured, "
               f"admission.headroom {limits.headroom:g}")
    elif is_measured(limits, measure):
        how = f"measured engine RTF {measure.rtf:.3f}, admission.headroom {limits.headroom:g}"
    else:
        how = "admission.initial_streams, not yet measured"
    return _overloaded(
        limits, "capacity",
        f"{load.active_sessions} sessions are being served, as many as it sustains in real time ({how})",
    )


def _overloaded(limits: AdmissionLimits, reason: str, why: str) -> Decision:
    retry = limits.retry_after_seconds
    message = f"the server is at capacity: {why}; try again in {retry:g} s"
    return Decision(False, OVERLOADED, reason, message, retry)
