"""Runs a StepPlan on the model backends and returns a StepResult: the engine's torch side.

It keeps each sentence's frames (a FrameBuffer per request) between steps and nothing else: which
slot a sentence holds, how far it got and what to do next are the scheduler's, and arrive in the
plan. A failure of one model call fails the sentences of that call only; the step goes on.

With a Preparer (prepare.py), a prefill of a backend that splits it (PreparingBackend) is handed to
the prepare thread and loaded into its slot in a later step, when done: until then its sentence
stays PREFILLING and its decode rows are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .backend import ModelBackend, PrefillResult, PreparingBackend
from .prepare import Prepared, PrepareJob, Preparer
from .requests import AudioEvent, ErrorEvent, TimingEvent
from .step import DecodeWork, Failed, PrefillWork, Progress, Release, StepPlan, StepResult, Vocoded, VocodeWork

log = logging.getLogger(__name__)

_GROWTH_FRAMES = 256  # initial capacity of a buffer whose length is not known in advance


@dataclass
class FrameBuffer:
    """One sentence's frames: data [C, capacity], the first `filled` valid. A sentence of unknown
    length grows it by doubling."""

    data: torch.Tensor | None = None
    filled: int = 0
    capacity_hint: int | None = None  # the sentence's total, when known

    def append(self, frames: torch.Tensor) -> None:
        """frames [C, n]"""
        n = frames.shape[-1]
        need = self.filled + n
        if self.data is None:
            size = max(need, self.capacity_hint or _GROWTH_FRAMES)
            self.data = frames.new_empty(frames.shape[0], size)
        elif need > self.data.shape[1]:
            grown = self.data.new_empty(self.data.shape[0], max(need, 2 * self.data.shape[1]))
            grown[:, : self.filled] = self.data[:, : self.filled]
            self.data = grown
        self.data[:, self.filled : need] = frames
        self.filled = need

    def window(self, start: int, end: int) -> torch.Tensor:
        assert self.data is not None and end <= self.filled
        return self.data[:, start:end]


class Executor:
    def __init__(
        self, backends: dict[str, ModelBackend], max_vocoder_batch: int, preparer: Preparer | None = None
    ) -> None:
        self.backends = backends
        self.max_vocoder_batch = max(1, max_vocoder_batch)
        self.preparer = preparer
        self._frames: dict[int, FrameBuffer] = {}
        self._totals: dict[int, int | None] = {}
        self._preparing: dict[int, PrefillWork] = {}  # handed to the preparer, not loaded yet

    def execute(self, plan: StepPlan) -> StepResult:
        result = StepResult()
        for release in plan.release:
            self._release(release)
        settled: set[int] = set()  # no decode this step: finished at prefill, or failed
        for prefill in plan.prefill:
            self._start_prefill(prefill, result, settled)
        if self.preparer is not None and self._preparing:
            self._collect_prepared(plan, result, settled)
        waiting = settled | self._preparing.keys()
        for work in plan.decode:
            self._decode(work, result, waiting)
        failed = {f.request_id for f in result.failed}
        self._vocode([w for w in plan.vocode if w.request_id not in failed], result)
        return result

    def frames_held(self) -> int:
        """Sentences whose frames are held (tests: nothing leaks)."""
        return len(self._frames)

    def preparing(self) -> int:
        """Prefills handed to the prepare thread and not loaded yet."""
        return len(self._preparing)

    # --- phases ----------------------------------------------------------------------------------
    def _release(self, release: Release) -> None:
        self._frames.pop(release.request_id, None)
        self._totals.pop(release.request_id, None)
        if self._preparing.pop(release.request_id, None) is not None and self.preparer is not None:
            self.preparer.cancel(release.request_id)  # a result still to come is dropped
        try:
            self.backends[release.voice].release(release.slot)
        except Exception:  # freeing must not stop the step; the slot's next prefill resets it
            log.exception("releasing slot %d of %s failed", release.slot, release.voice)

    def _start_prefill(self, work: PrefillWork, result: StepResult, settled: set[int]) -> None:
        backend = self.backends[work.voice]
        if self.preparer is not None and isinstance(backend, PreparingBackend):
            self._preparing[work.request_id] = work
            self.preparer.submit(PrepareJob(work, backend))
            return
        try:
            out = backend.prefill(work.slot, work.spoken, work.options)
        except Exception as exc:  # bad text must not take the engine down
            log.exception("prefill failed for request %s", work.request_id)
            self._prefill_failed(work, exc, result, settled)
            return
        self._prefilled(work, out, result, settled)

    def _collect_prepared(self, plan: StepPlan, result: StepResult, settled: set[int]) -> None:
        """Load what the prepare thread finished. First, prepare a queued sentence here when
        no playing session is short of audio, or when there is nothing else to run this step:
        sessions arriving together are prepared on both cores, and the last of them gets its
        first audio sooner (issue #18, item 2)."""
        assert self.preparer is not None
        busy = bool(plan.vocode) or any(
            r not in settled and r not in self._preparing for w in plan.decode for r in w.request_ids
        )
        if not (busy and plan.short_of_audio):
            self.preparer.run_one()
        for done in self.preparer.take_done():
            if self._preparing.pop(done.work.request_id, None) is not None:  # else: it left meanwhile
                self._load(done, result, settled)

    def _load(self, done: Prepared, result: StepResult, settled: set[int]) -> None:
        work, backend = done.work, self.backends[done.work.voice]
        if done.error is not None:  # logged where it happened
            self._prefill_failed(work, done.error, result, settled)
            return
        assert isinstance(backend, PreparingBackend)
        try:
            out = backend.load(work.slot, done.result)
        except Exception as exc:
            log.exception("loading the prefill of request %s failed", work.request_id)
            self._prefill_failed(work, exc, result, settled)
            return
        if not done.inline:
            result.prepare_seconds += done.seconds
        self._prefilled(work, out, result, settled)

    def _prefill_failed(self, work: PrefillWork, exc: Exception, result: StepResult, settled: set[int]) -> None:
        self._fail(result, work.request_id, f"could not synthesize sentence: {exc}")
        settled.add(work.request_id)

    def _prefilled(self, work: PrefillWork, out: PrefillResult, result: StepResult, settled: set[int]) -> None:
        backend = self.backends[work.voice]
        total = out.frames.shape[-1] if out.finished and out.frames is not None else out.total
        finished = out.finished or total == 0
        buffer = self._frames[work.request_id] = FrameBuffer(capacity_hint=total)
        self._totals[work.request_id] = total
        if out.frames is not None:
            buffer.append(out.frames)
        if finished:
            settled.add(work.request_id)
        self._timing(work.request_id, backend, out, total, result)
        result.progress.append(Progress(work.request_id, buffer.filled, total, finished))

    def _timing(
        self, request_id: int, backend: ModelBackend, out: PrefillResult, total: int | None, result: StepResult
    ) -> None:
        if out.word_frames is not None:  # before the sentence's first audio
            frame_seconds = backend.hop_length / backend.sample_rate
            result.events.append(TimingEvent(request_id, list(out.word_frames), frame_seconds, total or 0))

    def _decode(self, work: DecodeWork, result: StepResult, skip: set[int]) -> None:
        rows = [(r, s) for r, s in zip(work.request_ids, work.slots) if r not in skip]
        if not rows:
            return
        try:
            out = self.backends[work.voice].decode([s for _, s in rows])  # frames [B, K, C]
        except Exception as exc:
            log.exception("decode step failed")
            for r, _ in rows:
                self._fail(result, r, f"decode step failed: {exc}")
            return
        result.decode_batches.append(len(rows))
        for b, (r, _) in enumerate(rows):
            buffer = self._frames[r]
            buffer.append(out.frames[b, : out.lengths[b]].T)
            result.progress.append(Progress(r, buffer.filled, self._totals[r], out.finished[b]))

    def _vocode(self, works: list[VocodeWork], result: StepResult) -> None:
        for voice, group in self._vocoder_batches(works):
            backend = self.backends[voice]
            if group[0].span.window_frames == 0:  # empty sentence: its closing chunk has no audio
                for work in group:
                    self._emit(work, torch.zeros(0), backend, result)
                continue
            windows = torch.stack(
                [self._frames[w.request_id].window(w.span.window_start, w.span.window_end) for w in group])
            try:
                audio = backend.vocode(windows, [w.slot for w in group], [w.span for w in group])
            except Exception as exc:
                log.exception("vocoder failed")
                for work in group:
                    self._fail(result, work.request_id, f"vocoder failed: {exc}")
                continue
            result.vocode_batches.append(len(group))
            for work, pcm in zip(group, audio):
                self._emit(work, pcm, backend, result)

    def _vocoder_batches(self, works: list[VocodeWork]) -> Iterator[tuple[str, list[VocodeWork]]]:
        """Windows of the same voice and length decode together, a few at a time (on CPU, conv
        batches beyond a few rows cost more per row than they save)."""
        groups: dict[tuple[str, int], list[VocodeWork]] = {}
        for work in works:
            groups.setdefault((work.voice, work.span.window_frames), []).append(work)
        cap = self.max_vocoder_batch
        for (voice, _), group in groups.items():
            for i in range(0, len(group), cap):
                yield voice, group[i : i + cap]

    def _emit(self, work: VocodeWork, audio: torch.Tensor, backend: ModelBackend, result: StepResult) -> None:
        pcm = audio.float().cpu().numpy()
        result.vocoded.append(Vocoded(work.request_id, work.span, len(pcm) / backend.sample_rate))
        result.events.append(AudioEvent(work.request_id, work.span.index, pcm, last=work.span.last))

    def _fail(self, result: StepResult, request_id: int, message: str) -> None:
        result.failed.append(Failed(request_id, "synthesis_failed", message))
        result.events.append(ErrorEvent(request_id, "synthesis_failed", message))
