"""Everything a running server holds, built once in the app's lifespan (no globals)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..cache.runtime import CacheRuntime, open_cache
from ..config import AppConfig
from ..engine.backend import AcousticBackend
from ..engine.voice_backends import ArBackend, VitsBackend
from ..engine.executor import Engine, EngineConfig
from ..engine.requests import (
    EngineEvent,
    ErrorEvent,
    TimingEvent,
    SentenceRequest,
    SynthesisOptions,
    next_request_id,
)
from ..engine.scheduler import ChunkConfig, SchedulerConfig
from ..text.segmenter import SegmenterLimits
from ..voice.piper_voice import PiperVoice
from .metrics import Metrics, PrometheusEngineObserver
from .sentence_source import EngineSource, SentenceSource
from .session import Emit, Session, SessionSettings

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: AppConfig
    engine: Engine
    voices: dict[str, AcousticBackend]
    metrics: Metrics = field(default_factory=Metrics)
    sessions: dict[str, Session] = field(default_factory=dict)
    ready: bool = False
    draining: bool = False
    source: SentenceSource | None = None  # where sessions get audio: the engine, or the cache
    cache: CacheRuntime | None = None

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = EngineSource(self.engine)

    async def open_cache(self) -> None:
        """Start the sentence cache (in the lifespan: it needs the running loop)."""
        if not self.config.cache.enabled:
            log.info("sentence cache: off")
            return
        chunks = self.engine.config.scheduler.chunks
        self.cache = await open_cache(self.config, self.engine, self.voices, chunks)
        self.cache.stats.listener = lambda name: self.metrics.cache.labels(name).inc()
        self.source = self.cache.source

    async def close_cache(self) -> None:
        if self.cache is not None:
            await self.cache.close()

    @property
    def voice_rates(self) -> dict[str, int]:
        return {name: b.sample_rate for name, b in self.voices.items()}

    def default_settings(self) -> SessionSettings:
        cfg = self.config
        syn = cfg.synthesis
        return SessionSettings(
            voice=cfg.default_voice,
            sample_rate=cfg.session.sample_rate,
            format=cfg.session.format,
            options=SynthesisOptions(syn.noise_scale, syn.length_scale, syn.noise_w),
        )

    def new_session(self, settings: SessionSettings, emit: Emit) -> Session:
        s = self.config.session
        limits = SegmenterLimits(s.soft_sentence_chars, s.hard_sentence_chars)
        session = Session(
            self.source, self.voice_rates, settings, emit, limits, s.max_text_chars, s.max_contexts
        )
        session.on_first_audio = self.metrics.first_audio.observe
        self.sessions[session.session_id] = session
        self.metrics.active_sessions.set(len(self.sessions))
        return session

    def drop_session(self, session: Session) -> None:
        self.sessions.pop(session.session_id, None)
        self.metrics.active_sessions.set(len(self.sessions))

    def render_metrics(self) -> bytes:
        return self.metrics.render(self.engine.stats, self.engine.scheduler.num_waiting)

    async def drain(self, grace_seconds: float) -> None:
        """Graceful shutdown: no new sessions; running sentences get up to the grace period to
        finish; then every session is closed with 1001 (going away)."""
        self.draining = True
        log.info("event=shutdown_start sessions=%d grace_s=%.1f", len(self.sessions), grace_seconds)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and not all(s.is_idle() for s in self.sessions.values()):
            await asyncio.sleep(0.05)
        for session in list(self.sessions.values()):
            await session.shutdown(1001)
        log.info("event=shutdown_drained")

    def close(self) -> None:
        self.engine.stop()


def _build_backend(
    name: str, kind: str, voice: PiperVoice, cfg: AppConfig, weights: str | None, allow_random: bool
) -> AcousticBackend:
    slots = cfg.engine.max_slots
    if kind == "piper_vits":
        return VitsBackend(name, voice, slots)
    from ..model.ar_acoustic import ArAcousticModel, ArConfig
    from ..model.ar_weights import load_model, resolve_weights

    path = resolve_weights(weights)
    if path is None and not allow_random:
        raise ValueError(f"voice {name!r}: an AR voice needs a weights file (none configured or packaged)")
    if path is not None and not path.is_file():
        raise ValueError(f"voice {name!r}: AR weights file {str(path)!r} not found")
    device = cfg.engine.device
    model = load_model(path, device) if path else ArAcousticModel(ArConfig()).to(device).eval()
    return ArBackend(name, voice, model, slots)


def build_services(cfg: AppConfig) -> Services:
    t0 = time.perf_counter()
    voice = PiperVoice.from_package(device=cfg.engine.device)
    backends = {
        name: _build_backend(name, v.kind, voice, cfg, v.weights, v.allow_random_weights)
        for name, v in cfg.voices.items()
    }
    first = backends[cfg.default_voice]
    ctx_left, ctx_right = voice.decoder_receptive_field_frames()
    chunks = ChunkConfig(
        first_chunk_frames=cfg.engine.first_chunk_frames,
        chunk_frames=cfg.engine.chunk_frames,
        left_context=ctx_left,
        right_context=ctx_right,
    )
    sched = SchedulerConfig(
        max_prefills_per_step=cfg.engine.max_prefills_per_step,
        vocoder_frames_per_step=cfg.engine.vocoder_frames_per_step,
        chunks=chunks,
    )
    engine = Engine(
        backends, EngineConfig(sched, cfg.engine.torch_threads, cfg.engine.max_vocoder_batch)
    )
    metrics = Metrics()
    engine.stats.observer = PrometheusEngineObserver(metrics)
    engine.start()
    log.info(
        "voices %s loaded in %.1fs (native rate %d Hz)",
        sorted(backends),
        time.perf_counter() - t0,
        first.sample_rate,
    )
    return Services(cfg, engine, backends, metrics)


async def synthesize_once(
    engine: Engine, voice: str, text: str, options: SynthesisOptions
) -> np.ndarray:
    """Run one sentence through the engine and gather its native-rate audio (warm-up, tests)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[EngineEvent] = asyncio.Queue()
    request = SentenceRequest(
        session_id=f"internal-{next_request_id()}",
        context_id="default",
        text=text,
        voice=voice,
        options=options,
        session_ordinal=0,
        deliver=lambda ev: loop.call_soon_threadsafe(queue.put_nowait, ev),
    )
    engine.submit(request)
    chunks: list[np.ndarray] = []
    while True:
        event = await queue.get()
        if isinstance(event, ErrorEvent):
            raise RuntimeError(event.message)
        if isinstance(event, TimingEvent):  # word timings: not audio
            continue
        chunks.append(event.pcm)
        if event.last:
            return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
