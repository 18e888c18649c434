"""The engine: one thread owns the model device and runs schedule -> execute -> update steps.

Work arrives through a thread-safe inbox (sentence requests and cancels). Each step's events (word
timings, audio chunks, errors) leave in one batch through the `publish` callable given to `start`
(the server's EngineClient hops them onto the event loop once). No sockets, no JSON, no cache here.
Tests drive `step()` directly, with no thread at all.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import EngineSection
from .backend import ModelBackend
from .chunking import ChunkConfig
from .executor import Executor
from .prepare import Preparer
from .requests import CancelRequest, EngineEvent, ErrorEvent, Reassign, SentenceRequest
from .scheduler import Scheduler, SchedulerConfig, SequenceState, VoiceSpec
from .stats import EngineStats

log = logging.getLogger(__name__)

Publish = Callable[[list[EngineEvent]], None]
_WAKE = object()  # inbox item: a prepared sentence is ready (nothing else to take)


@dataclass(frozen=True)
class IdleCall:
    """Work on a voice's model that must not overlap its sentences (e.g. new weights)."""

    voice: str
    fn: Callable[[], Any]
    future: Future[Any]


_DEFAULTS = EngineSection()  # the config's engine section: its defaults are the engine's


@dataclass
class EngineConfig:
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    first_chunk_frames: int = _DEFAULTS.first_chunk_frames
    chunk_frames: int = _DEFAULTS.chunk_frames
    torch_threads: int = _DEFAULTS.torch_threads  # see torch_threads(): 0 auto, < 0 torch's default
    max_vocoder_batch: int = _DEFAULTS.max_vocoder_batch
    prepare_threads: int = 0  # threads running prefills' slot-free half beside the steps; 0: inline
                              # (the server passes prepare_threads(engine.prepare_threads))


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def prepare_threads(configured: int | str) -> int:
    """engine.prepare_threads: n as configured; "auto": one thread when there is a core to spare."""
    if configured == "auto":
        return 1 if usable_cores() >= 2 else 0
    return max(0, int(configured))


def torch_threads(configured: int) -> int | None:
    """The engine's torch threads: n > 0 as configured; 0 (auto) every CPU this process may use
    but one, at least 1, since the event loop needs a core of its own to send audio (on 2 cores,
    1 thread halved one session's first audio: bench/bench_peer.py --threads); < 0: torch's
    own default (None: leave it)."""
    if configured > 0:
        return configured
    if configured < 0:
        return None
    return max(1, usable_cores() - 1)


class Engine:
    def __init__(self, backends: dict[str, ModelBackend], config: EngineConfig) -> None:
        self.backends = backends
        self.config = config
        voices = {name: VoiceSpec(b.max_slots, self.chunk_config(name)) for name, b in backends.items()}
        self.scheduler = Scheduler(config.scheduler, voices)
        self._inbox: queue.SimpleQueue[SentenceRequest | CancelRequest | Reassign | IdleCall | object | None] = (
            queue.SimpleQueue()
        )
        preparer = Preparer(config.prepare_threads, self._wake) if config.prepare_threads > 0 else None
        self.executor = Executor(backends, config.max_vocoder_batch, preparer)
        self.stats = EngineStats()
        self._stalled = False  # the last step did nothing: every sentence waits for the prepare thread
        self._idle_calls: list[IdleCall] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    def chunk_config(self, voice: str) -> ChunkConfig:
        """The voice's chunk framing (the sentence cache replays in it too)."""
        backend = self.backends[voice]
        left, right = backend.vocoder_context
        first, later = backend.chunk_frames or (self.config.first_chunk_frames, self.config.chunk_frames)
        return ChunkConfig(first, later, left, right)

    # --- called from any thread ----------------------------------------------------------
    def submit(self, request: SentenceRequest) -> None:
        if request.voice not in self.backends:
            raise KeyError(f"unknown voice {request.voice!r}")
        self._inbox.put(request)

    def cancel(self, cancel: CancelRequest) -> None:
        self._inbox.put(cancel)

    def reassign(self, reassign: Reassign) -> None:
        self._inbox.put(reassign)

    def call_when_idle(self, voice: str, fn: Callable[[], Any]) -> Future[Any]:
        """Run fn on the engine thread once `voice` holds no slot; meanwhile the voice admits no
        new sentence (its sentences in flight finish first). The future gets fn's result."""
        if voice not in self.backends:
            raise KeyError(f"unknown voice {voice!r}")
        future: Future[Any] = Future()
        self._inbox.put(IdleCall(voice, fn, future))
        return future

    def start(self, publish: Publish) -> None:
        self._thread = threading.Thread(target=self._run, args=(publish,), name="stream-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._inbox.put(None)
        if self.executor.preparer is not None:
            self.executor.preparer.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _wake(self) -> None:
        """A prepared sentence is ready to load (called from the prepare thread)."""
        self._inbox.put(_WAKE)

    # --- the engine's thread (or a test's) ----------------------------------------------------
    def step(self) -> list[EngineEvent]:
        """Take what the inbox holds, then one iteration: release, prefill, one batched decode
        step per voice, a budget of vocoder chunks. Returns the step's events, in order."""
        self._drain_inbox()
        self._run_idle_calls()  # an idle voice's call runs at once
        t0 = time.perf_counter()
        plan = self.scheduler.schedule(now=time.monotonic())
        if not (plan.has_model_work() or plan.release):
            return []
        live = len(self.scheduler.sequences) - self.scheduler.num_waiting()  # in flight this step
        result = self.executor.execute(plan)
        retired = self.scheduler.update(plan, result, now=time.monotonic())
        self._stalled = result.is_empty() and not plan.release
        if plan.has_model_work():
            self.stats.record_step(time.perf_counter() - t0, len(plan.prefill), result, live)
        self._record(retired)
        self._run_idle_calls()  # a voice whose last slot this step released
        return result.events

    def fail_in_flight(self, message: str) -> list[EngineEvent]:
        """After an unexpected error in a step: fail every sentence holding a slot (a bug must
        not leave every session hanging) and free their slots at the next step."""
        retired = self.scheduler.fail_in_flight()
        self._record(retired)
        return [ErrorEvent(s.request_id, "synthesis_failed", message) for s in retired]

    def _run(self, publish: Publish) -> None:
        threads = torch_threads(self.config.torch_threads)
        if threads is not None:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            while not self._stopping:
                waiting = self._stalled and self.executor.preparing() > 0
                if waiting or not (self.scheduler.has_work() or self._idle_calls):
                    self._stalled = False
                    self._wait_for_work()
                    if self._stopping:
                        break
                try:
                    events = self.step()
                except Exception as exc:
                    log.exception("engine step failed; failing the sentences in flight")
                    events = self.fail_in_flight(f"engine error: {exc}")
                if events:
                    publish(events)

    def _wait_for_work(self) -> None:
        try:
            self._accept(self._inbox.get(timeout=0.5))
        except queue.Empty:
            pass

    def _drain_inbox(self) -> None:
        try:
            while True:
                self._accept(self._inbox.get_nowait())
        except queue.Empty:
            pass

    def _accept(self, item: object) -> None:
        if isinstance(item, SentenceRequest):
            self.scheduler.add(item)
        elif isinstance(item, CancelRequest):
            self._record(self.scheduler.cancel(item))
        elif isinstance(item, Reassign):
            self.scheduler.reassign(item)
        elif isinstance(item, IdleCall):
            self._idle_calls.append(item)
            self.scheduler.paused.add(item.voice)

    def _run_idle_calls(self) -> None:
        for call in [c for c in self._idle_calls if self.scheduler.is_idle(c.voice)]:
            self._idle_calls.remove(call)
            try:
                call.future.set_result(call.fn())
            except Exception as exc:  # reported to whoever asked; the engine goes on
                call.future.set_exception(exc)
            if not any(c.voice == call.voice for c in self._idle_calls):
                self.scheduler.paused.discard(call.voice)

    def _record(self, retired: list[SequenceState]) -> None:
        for seq in retired:
            self.stats.record_finish(seq.status)
        self.stats.record_occupancy(self.scheduler.num_waiting(), self.scheduler.active_slots())
