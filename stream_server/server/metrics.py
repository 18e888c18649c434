"""Prometheus metrics, in a registry of the app's own (made in the lifespan, no global state).

The engine thread reports through an EngineObserver (prometheus-client's metrics are
thread-safe), queue and slot gauges included; the event loop never reads engine state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE_LATEST  # re-exported for the route
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..engine.stats import EngineObserver

if TYPE_CHECKING:
    from ..engine.stats import EngineStats

_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
_STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.active_sessions = Gauge("tts_active_sessions", "Open streaming sessions", registry=r)
        self.queued_sentences = Gauge(
            "tts_queued_sentences", "Sentences waiting for an engine slot", registry=r
        )
        self.active_slots = Gauge(
            "tts_engine_active_slots", "Engine slots held by sentences, per voice", ["voice"], registry=r
        )
        self.decode_batch = Histogram(
            "tts_decode_batch_size", "Sequences per batched decode step", buckets=_BATCH_BUCKETS, registry=r
        )
        self.vocoder_batch = Histogram(
            "tts_vocoder_batch_size", "Chunk windows per vocoder call", buckets=_BATCH_BUCKETS, registry=r
        )
        self.step_seconds = Histogram(
            "tts_engine_step_seconds", "Duration of one engine iteration", buckets=_STEP_BUCKETS, registry=r
        )
        self.first_audio = Histogram(
            "tts_first_audio_seconds",
            "From the text frame that completed a sentence to its first audio frame sent",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.rtf = Gauge(
            "tts_engine_real_time_factor",
            "Engine busy seconds per second of audio produced, since start",
            registry=r,
        )
        self.audio_seconds = Counter("tts_audio_seconds", "Seconds of audio synthesized", registry=r)
        self.sentences = Counter(
            "tts_sentences", "Sentences finished by the engine, by outcome", ["outcome"], registry=r
        )
        self.cache = Counter("tts_cache", "Sentence cache lookups by result", ["result"], registry=r)
        self.errors = Counter("tts_errors", "Errors reported to clients, by code", ["code"], registry=r)
        self.admission_refusals = Counter(
            "tts_admission_refusals", "Sessions and texts refused by admission control, by reason",
            ["reason"], registry=r,
        )
        self.admission_active = Gauge(
            "tts_admission_active_sessions", "Open sessions counted as load (text or audio in hand, or recently)",
            registry=r,
        )
        self.admission_capacity = Gauge(
            "tts_admission_capacity_sessions", "Active sessions admission allows now (measured capacity)",
            registry=r,
        )
        self.queued_session_sentences = Gauge(
            "tts_session_queued_sentences", "Sentences accepted by sessions and not yet sent in full",
            registry=r,
        )
        self.send_stalls = Counter(
            "tts_send_stalls", "Sessions ended because their client stopped reading, by protocol", ["protocol"],
            registry=r,
        )
        self.audio_held = Gauge(
            "tts_audio_held_seconds", "Audio synthesized and not yet sent to its client, all sessions", registry=r
        )
        self.audio_held_max = Gauge(
            "tts_audio_held_max_seconds", "Audio synthesized and not yet sent, the session holding most", registry=r
        )

    def render(self, stats: EngineStats) -> bytes:
        if stats.audio_seconds > 0:
            self.rtf.set(stats.step_seconds / stats.audio_seconds)
        return generate_latest(self.registry)


class PrometheusEngineObserver(EngineObserver):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def step(self, seconds: float) -> None:
        self.m.step_seconds.observe(seconds)

    def decode(self, batch: int) -> None:
        self.m.decode_batch.observe(batch)

    def vocode(self, batch: int) -> None:
        self.m.vocoder_batch.observe(batch)

    def audio(self, seconds: float) -> None:
        self.m.audio_seconds.inc(seconds)

    def finished(self, outcome: str) -> None:
        self.m.sentences.labels(outcome).inc()

    def occupancy(self, waiting: int, active_slots: dict[str, int]) -> None:
        self.m.queued_sentences.set(waiting)
        for voice, n in active_slots.items():
            self.m.active_slots.labels(voice).set(n)
