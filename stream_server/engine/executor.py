"""The engine thread: the only code that touches the model device.

Work arrives through a thread-safe inbox (sentence requests and cancels); PCM leaves through each
request's `deliver` callback, which the session makes thread-safe (loop.call_soon_threadsafe).
No sockets, no JSON, no cache here.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import torch

from .backend import AcousticBackend
from .requests import (
    AudioEvent,
    CancelRequest,
    ErrorEvent,
    SentenceRequest,
    SentenceStatus,
    TimingEvent,
)
from .scheduler import ChunkTask, Scheduler, SchedulerConfig
from .stats import EngineStats

log = logging.getLogger(__name__)


@dataclass
class _Live:
    """Engine-side state of one admitted sentence: its slot and its latent frames."""

    request: SentenceRequest
    slot: int
    frames: torch.Tensor  # [C, num_frames], filled up to `filled`
    filled: int = 0


@dataclass
class _Slots:
    free: list[int]

    @classmethod
    def of(cls, n: int) -> "_Slots":
        return cls(free=list(range(n - 1, -1, -1)))


@dataclass
class EngineConfig:
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    torch_threads: int = 0  # 0: leave torch's default
    max_vocoder_batch: int = 4


class Engine:
    def __init__(self, backends: dict[str, AcousticBackend], config: EngineConfig) -> None:
        self.backends = backends
        self.config = config
        self.scheduler = Scheduler(config.scheduler, {n: b.max_slots for n, b in backends.items()})
        self.stats = EngineStats()
        self._inbox: queue.SimpleQueue[SentenceRequest | CancelRequest | None] = queue.SimpleQueue()
        self._waiting: dict[int, SentenceRequest] = {}
        self._live: dict[int, _Live] = {}
        self._slots = {n: _Slots.of(b.max_slots) for n, b in backends.items()}
        self._thread: threading.Thread | None = None
        self._stopping = False

    # --- called from any thread ----------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stream-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, request: SentenceRequest) -> None:
        if request.voice not in self.backends:
            raise KeyError(f"unknown voice {request.voice!r}")
        self._inbox.put(request)

    def cancel(self, cancel: CancelRequest) -> None:
        self._inbox.put(cancel)

    # --- engine thread -------------------------------------------------------------------
    def _run(self) -> None:
        if self.config.torch_threads > 0:
            torch.set_num_threads(self.config.torch_threads)
        with torch.inference_mode():
            while not self._stopping:
                self._drain_inbox(block=not self.scheduler.has_work())
                if self._stopping:
                    break
                try:
                    self.step()
                except Exception as exc:  # a bug must not leave every session hanging
                    log.exception("engine step failed; failing the sentences in flight")
                    for request_id in list(self._live):
                        self._fail(request_id, "synthesis_failed", f"engine error: {exc}")

    def _drain_inbox(self, block: bool) -> None:
        try:
            item = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
            while True:
                self._accept(item)
                item = self._inbox.get_nowait()
        except queue.Empty:
            pass

    def _accept(self, item: SentenceRequest | CancelRequest | None) -> None:
        if isinstance(item, SentenceRequest):
            self._waiting[item.request_id] = item
            self.scheduler.add(item.request_id, item.voice, item.session_id, item.session_ordinal)
        elif isinstance(item, CancelRequest):
            self._cancel(item)

    def _cancel(self, cancel: CancelRequest) -> None:
        requests = [*self._waiting.values(), *(live.request for live in self._live.values())]
        for req in requests:
            if req.session_id == cancel.session_id and cancel.context_id in (None, req.context_id):
                self._finish(req.request_id, SentenceStatus.CANCELLED)

    def step(self) -> None:
        """One iteration: admit (prefill), one batched decode step, a budget of vocoder chunks."""
        t0 = time.perf_counter()
        plan = self.scheduler.schedule(now=time.monotonic())
        for request_id in plan.admit:
            self._prefill(request_id)
        for voice, request_ids in plan.decode.items():
            self._decode(voice, request_ids)
        self._vocode(plan.vocode)
        if not plan.is_empty():
            self.stats.record_step(time.perf_counter() - t0, plan)
            self.stats.record_live(len(self._live))

    def _prefill(self, request_id: int) -> None:
        req = self._waiting.pop(request_id)
        backend = self.backends[req.voice]
        slot = self._slots[req.voice].free.pop()
        try:
            out = backend.prefill(slot, req.text, req.options)
        except Exception as exc:  # bad text must not take the engine down
            log.exception("prefill failed for request %s", request_id)
            self._slots[req.voice].free.append(slot)
            self._live[request_id] = _Live(req, -1, torch.empty(0))
            self._fail(request_id, "synthesis_failed", f"could not synthesize sentence: {exc}")
            return
        frames = torch.empty(backend.latent_channels, out.num_frames)
        live = self._live[request_id] = _Live(req, slot, frames)
        if out.frames is not None:
            n = out.frames.shape[-1]
            frames[:, :n] = out.frames
            live.filled = n
        self.scheduler.on_prefilled(request_id, out.num_frames, live.filled)
        if out.word_frames is not None:  # before the first AudioEvent of the sentence
            frame_seconds = backend.hop_length / backend.sample_rate
            req.deliver(TimingEvent(request_id, list(out.word_frames), frame_seconds, out.num_frames))
        if out.num_frames == 0:  # nothing to say (e.g. punctuation only): close the sentence
            req.deliver(AudioEvent(request_id, 0, frames.new_zeros(0).numpy(), last=True))
            self._finish(request_id, SentenceStatus.FINISHED)

    def _decode(self, voice: str, request_ids: list[int]) -> None:
        ids = [r for r in request_ids if self.scheduler.status(r) == SentenceStatus.DECODING]
        if not ids:
            return
        backend = self.backends[voice]
        try:
            out = backend.decode_step([self._live[r].slot for r in ids])  # [B, K, C]
        except Exception as exc:
            log.exception("decode step failed")
            for r in ids:
                self._fail(r, "synthesis_failed", f"decode step failed: {exc}")
            return
        self.stats.record_decode(len(ids))
        for row, r in enumerate(ids):
            live = self._live[r]
            take = min(out.shape[1], live.frames.shape[1] - live.filled)
            live.frames[:, live.filled : live.filled + take] = out[row, :take].T
            live.filled += take
            self.scheduler.on_frames(r, live.filled)

    def _vocode(self, tasks: list[ChunkTask]) -> None:
        # Batch windows of the same voice and length into one decoder call.
        groups: dict[tuple[str, int], list[ChunkTask]] = {}
        for task in tasks:
            groups.setdefault((task.voice, task.window_frames), []).append(task)
        for (voice, _), group in self._split(groups):
            backend = self.backends[voice]
            windows = torch.stack(
                [self._live[t.request_id].frames[:, t.window_start : t.window_end] for t in group]
            )
            try:
                audio = backend.vocode(windows)  # [B, W * hop]
            except Exception as exc:
                log.exception("vocoder failed")
                for t in group:
                    self._fail(t.request_id, "synthesis_failed", f"vocoder failed: {exc}")
                continue
            self.stats.record_vocode(len(group))
            for row, task in enumerate(group):
                self._emit_chunk(task, audio[row], backend.hop_length)

    def _split(self, groups: dict[tuple[str, int], list[ChunkTask]]):
        # On CPU, conv batches beyond a few rows cost more per row than they save.
        cap = max(1, self.config.max_vocoder_batch)
        for key, group in groups.items():
            for i in range(0, len(group), cap):
                yield key, group[i : i + cap]

    def _emit_chunk(self, task: ChunkTask, audio: torch.Tensor, hop: int) -> None:
        lo = (task.start - task.window_start) * hop
        hi = (task.end - task.window_start) * hop
        pcm = audio[lo:hi].float().cpu().numpy()
        req = self._live[task.request_id].request
        seconds = len(pcm) / self.backends[task.voice].sample_rate
        self.stats.record_audio(seconds)
        req.deliver(AudioEvent(task.request_id, task.chunk_index, pcm, last=task.last))
        if self.scheduler.on_chunk_done(task.request_id, seconds, time.monotonic()):
            self._finish(task.request_id, SentenceStatus.FINISHED)

    def _fail(self, request_id: int, code: str, message: str) -> None:
        live = self._live.get(request_id)
        if live is not None:
            live.request.deliver(ErrorEvent(request_id, code, message))
        self._finish(request_id, SentenceStatus.FAILED)

    def _finish(self, request_id: int, status: SentenceStatus) -> None:
        """Free the sentence's slot now, so the next iteration can reuse it."""
        self.scheduler.finish(request_id, status)
        self._waiting.pop(request_id, None)
        live = self._live.pop(request_id, None)
        if live is not None and live.slot >= 0:
            self.backends[live.request.voice].release(live.slot)
            self._slots[live.request.voice].free.append(live.slot)
        self.stats.record_finish(status)

    # --- introspection (for tests and metrics; read from any thread) ----------------------
    def active_slots(self) -> dict[str, int]:
        return {n: b.max_slots - len(self._slots[n].free) for n, b in self.backends.items()}
