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

With a cost model (calibrated at start-up by a batched synthesis, server/calibration.py) the
capacity follows how the engine's cost per stream falls with batch size: n real-time streams cost
`fixed + per_stream * n` engine seconds per second (a step's cost shared by its batch, and what each
row adds), so the engine sustains n = (headroom - fixed) / per_stream from its first second. The
measured RTF then only scales the model (a machine slower than at calibration, or busy with other
work, has a higher RTF at the same concurrency than the model says), so a measure taken at low load
no longer reads as low capacity (docs/limits.md, "Admission").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
class CostModel:
    """Engine seconds per second of audio with n sentences in flight: fixed / n + per_stream."""

    fixed: float
    per_stream: float

    def rtf_at(self, n: float) -> float:
        return self.fixed / max(n, 1.0) + self.per_stream

    def streams(self, headroom: float, scale: float = 1.0) -> float:
        """Most real-time streams n with n * rtf_at(n) * scale <= headroom (n >= 1)."""
        return (headroom / scale - self.fixed) / self.per_stream

    @classmethod
    def fit(cls, points: Sequence[tuple[float, float]]) -> CostModel:
        """Least squares on (n, RTF at n) pairs; RTF is linear in 1 / n. Both terms stay positive
        (a noisy measure must not promise unbounded capacity)."""
        xs, ys = [1.0 / n for n, _ in points], [rtf for _, rtf in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        fixed = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var > 0 else 0.0
        fixed = max(0.0, fixed)
        per_stream = max(my - fixed * mx, 0.05 * my)
        return cls(fixed, per_stream)


@dataclass(frozen=True)
class Measure:
    """The engine's recent RTF (None: nothing measured), how much audio it is over and the mean
    concurrency it was measured at; the calibrated cost model, if any."""

    rtf: float | None
    audio_seconds: float
    concurrency: float | None = None
    model: CostModel | None = None


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
        return measure.model.streams(limits.headroom, model_scale(limits, measure))
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
        how = (f"engine cost {measure.model.fixed:.3f} + {measure.model.per_stream:.3f} x streams s per s, "
               f"x{model_scale(limits, measure):.2f} as measured, admission.headroom {limits.headroom:g}")
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
