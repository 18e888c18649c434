"""Everything a running server holds, built once in the app's lifespan (no globals), and the one
session envelope every protocol adapter opens its sessions through."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from ..cache.runtime import CacheRuntime, open_cache
from ..config import AppConfig
from ..engine.backend import ModelBackend
from ..engine.client import EngineClient
from ..engine.engine import Engine, EngineConfig, prepare_threads
from ..engine.requests import SynthesisOptions
from ..engine.scheduler import SchedulerConfig
from ..models.loading import build_backends
from .admission import Admission, limits_of
from .events import Error, SessionError, SessionEvent
from .metrics import Metrics, PrometheusEngineObserver
from .sentence_cost import VoiceCost
from .sentence_source import EngineSource, SentenceSource
from .session import CloseTransport, Emit, Session, SessionDeps, SessionHooks
from .session_settings import SessionSettings, VoiceBook

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: AppConfig
    client: EngineClient
    voices: dict[str, ModelBackend]
    metrics: Metrics = field(default_factory=Metrics)
    sessions: dict[str, Session] = field(default_factory=dict)
    ready: bool = False
    draining: bool = False
    source: SentenceSource | None = None  # where sessions get audio: the engine, or the cache
    cache: CacheRuntime | None = None
    request_exit: Callable[[], None] | None = None  # graceful shutdown, set by the CLI's server
    admission: Admission | None = None  # None: every session and text is taken (no engine to measure)

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = EngineSource(self.client)
        def held() -> list[float]:
            return [s.ahead.held for s in list(self.sessions.values())]

        self.metrics.audio_held.set_function(lambda: sum(held()))
        self.metrics.audio_held_max.set_function(lambda: max(held(), default=0.0))

    @property
    def engine(self) -> Engine:
        return self.client.engine

    async def open_cache(self) -> None:
        """Start the sentence cache (in the lifespan: it needs the running loop)."""
        if not self.config.cache.enabled:
            log.info("sentence cache: off")
            return
        self.cache = await open_cache(self.config, self.client, self.voices)
        self.cache.stats.listener = lambda name: self.metrics.cache.labels(name).inc()
        self.source = self.cache.source

    async def close_cache(self) -> None:
        if self.cache is not None:
            await self.cache.close()

    @property
    def gpt_sovits_voice(self) -> str | None:
        """The voice GPT-SoVITS' api_v2 endpoints speak (config gpt_sovits_api.voice, or the first)."""
        voices = [n for n, b in self.voices.items() if b.kind == "gpt_sovits"]
        chosen = self.config.gpt_sovits_api.voice
        return chosen if chosen is not None else (voices[0] if voices else None)

    def refresh_fingerprint(self, voice: str) -> None:
        """A voice's weights or default reference changed: its sentences get new cache keys."""
        if self.cache is not None:
            self.cache.source.keys.fingerprints[voice] = self.voices[voice].fingerprint

    @property
    def voice_rates(self) -> dict[str, int]:
        return {name: b.sample_rate for name, b in self.voices.items()}

    @property
    def voice_book(self) -> VoiceBook:
        """What sessions check their settings against: rates, and the speaker names of the
        multi-speaker voices (a client asks for "<voice>#<speaker>")."""
        speakers = {name: list(b.speakers) for name, b in self.voices.items()}
        costs = {name: VoiceCost(b.espeak_voice, _max_seconds(b)) for name, b in self.voices.items()}
        return VoiceBook(self.voice_rates, speakers, costs)

    def default_settings(self) -> SessionSettings:
        cfg = self.config
        syn = cfg.synthesis
        return SessionSettings(
            voice=cfg.default_voice,
            sample_rate=cfg.session.sample_rate,
            format=cfg.session.format,
            options=SynthesisOptions(syn.noise_scale, syn.length_scale, syn.noise_w),
        )

    # --- the session envelope ---------------------------------------------------------------
    def note_error(self, protocol: str, session_id: str, code: str, message: str) -> None:
        """Count and log an error reported to a client: the one place that does."""
        self.metrics.errors.labels(code).inc()
        log.warning(
            "event=error protocol=%s session_id=%s code=%s message=%r", protocol, session_id, code, message
        )

    @contextlib.asynccontextmanager
    async def open_session(
        self,
        protocol: str,
        settings: SessionSettings | Callable[[], Awaitable[SessionSettings]],
        emit: Emit,
        close_transport: CloseTransport | None = None,
        **log_fields: object,
    ) -> AsyncIterator[Session]:
        """A session for a protocol adapter, from start to end: refuses while draining and past
        admission's limits (`overloaded`), validates the settings (Ready goes out), logs
        session_start / session_end, counts every error the session emits and every SessionError
        that leaves the block (the adapter then puts it on its wire), and always closes the session
        and drops it.

        `settings` may be an async callable that reads them from the request (and raises
        SessionError for bad ones): its refusals are counted here like any other."""
        session_id = "-"
        try:
            if self.draining:
                raise SessionError("shutting_down", "the server is shutting down; try again later")
            if callable(settings):
                settings = await settings()
            if self.admission is not None:  # no await from here to the session being counted
                self.admission.check_session(self.sessions.values())
            session = self._new_session(protocol, settings, emit, close_transport)
            session_id = session.session_id
            started = False
            try:
                await session.start()
                started = True
                self._log_start(protocol, session, log_fields)
                yield session
            finally:
                await session.close()
                self._drop(session)
                if started:
                    self._log_end(session)
        except SessionError as exc:
            self.note_error(protocol, session_id, exc.code, exc.message)
            raise

    def _new_session(
        self, protocol: str, settings: SessionSettings, emit: Emit, close_transport: CloseTransport | None
    ) -> Session:
        async def counted(event: SessionEvent) -> None:
            if isinstance(event, Error):
                self.note_error(protocol, session.session_id, event.code, event.message)
            await emit(event)

        hooks = SessionHooks(
            admit_text=self._admit_text,
            on_first_audio=self.metrics.first_audio.observe,
            on_stall=self.metrics.send_stalls.labels(protocol).inc,
            close_transport=close_transport,
        )
        assert self.source is not None  # set in __post_init__
        deps = SessionDeps(self.source, self.voice_book, counted, self.config.session, hooks)
        session = Session(deps, settings)
        self.sessions[session.session_id] = session
        self.metrics.active_sessions.set(len(self.sessions))
        return session

    def _admit_text(self, asking: Session, speakable: bool) -> None:
        if self.admission is not None:
            self.admission.check_text(asking, self.sessions.values(), speakable)

    def _drop(self, session: Session) -> None:
        self.sessions.pop(session.session_id, None)
        if self.admission is not None:
            self.admission.forget(session)
        self.metrics.active_sessions.set(len(self.sessions))

    def _log_start(self, protocol: str, session: Session, fields: dict[str, object]) -> None:
        s = session.settings
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        log.info(
            "event=session_start session_id=%s protocol=%s voice=%s sample_rate=%d format=%s%s",
            session.session_id, protocol, s.voice_name, s.sample_rate, s.format, extra,
        )

    def _log_end(self, session: Session) -> None:
        log.info(
            "event=session_end session_id=%s sentences=%d seconds=%.1f",
            session.session_id, session.sentences_submitted, session.age(),
        )

    # --- operations ---------------------------------------------------------------------------
    def render_metrics(self) -> bytes:
        if self.admission is not None:
            self.admission.publish(self.sessions.values())
        return self.metrics.render(self.engine.stats)

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
        self.client.stop()


def _max_seconds(backend: ModelBackend) -> float | None:
    """The most audio one sentence of the voice may have (its max_sentence_frames), in seconds."""
    frames = backend.max_sentence_frames
    return None if frames is None else frames * backend.hop_length / backend.sample_rate


def engine_config(cfg: AppConfig) -> EngineConfig:
    e = cfg.engine
    sched = SchedulerConfig(max_prefills_per_step=e.max_prefills_per_step,
                            vocoder_frames_per_step=e.vocoder_frames_per_step)
    return EngineConfig(sched, e.first_chunk_frames, e.chunk_frames, e.torch_threads, e.max_vocoder_batch,
                        prepare_threads(e.prepare_threads))


def build_services(cfg: AppConfig) -> Services:
    """Voices, the engine thread and its loop-side client (call from the running loop)."""
    t0 = time.perf_counter()
    backends = build_backends(cfg)
    engine = Engine(backends, engine_config(cfg))
    metrics = Metrics()
    engine.stats.observer = PrometheusEngineObserver(metrics)
    engine.stats.recent_window_audio_seconds = cfg.admission.window_audio_seconds
    client = EngineClient(engine, asyncio.get_running_loop())
    client.start()
    log.info(
        "voices %s loaded in %.1fs (native rate %d Hz)",
        sorted(backends), time.perf_counter() - t0, backends[cfg.default_voice].sample_rate,
    )
    admission = Admission(limits_of(cfg.admission), lambda: engine.stats.recent, metrics)
    return Services(cfg, client, backends, metrics, admission=admission)

