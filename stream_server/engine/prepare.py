"""The prepare thread: the slot-free half of prefills (backend.prepare) beside the engine's steps.

On a CPU the engine thread is busy with decode steps and vocoder chunks, while a new sentence's text
encoder, durations and conditioning are a third of the engine's work per second of audio, and all
of a new session's wait before its first decode step. Here they run on another core meanwhile
(bench/engine_profile.py). When the engine thread has nothing else to do in a step it takes a queued
job itself, so a burst of new sessions is prepared on both cores. Jobs start in the order the
scheduler admitted them. Nothing here touches a slot: the executor loads each result into its slot
on the engine thread, or drops it if the sentence left meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from .backend import PreparingBackend
from .step import PrefillWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareJob:
    work: PrefillWork
    backend: PreparingBackend


@dataclass(frozen=True)
class Prepared:
    """A finished job: its result, or the error that stopped it."""

    work: PrefillWork
    result: Any = None
    error: Exception | None = None
    seconds: float = 0.0
    inline: bool = False  # run by the engine thread itself (its time is in the step's)


class Preparer:
    """`threads` worker threads (daemon) and a queue; `notify` is called (from a worker) when a job
    is done, so the engine thread wakes to load it."""

    def __init__(self, threads: int, notify: Callable[[], None]) -> None:
        self._notify = notify
        self._cv = threading.Condition()
        self._queue: deque[PrepareJob] = deque()
        self._done: list[Prepared] = []
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"stream-prepare-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: PrepareJob) -> None:
        with self._cv:
            self._queue.append(job)
            self._cv.notify()

    def cancel(self, request_id: int) -> None:
        """Drop a queued job (a running one finishes; the executor ignores its result)."""
        with self._cv:
            self._queue = deque(j for j in self._queue if j.work.request_id != request_id)

    def take_done(self) -> list[Prepared]:
        with self._cv:
            done, self._done = self._done, []
        return done

    def run_one(self) -> bool:
        """Run the next queued job on the calling thread (the engine's, when it is idle)."""
        with self._cv:
            if not self._queue:
                return False
            job = self._queue.popleft()
        self._finish(replace(self._run(job), inline=True))
        return True

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._queue.clear()
            self._cv.notify_all()

    # --- workers ---------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cv:
                while not (self._queue or self._stopping):
                    self._cv.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
            self._finish(self._run(job))
            self._notify()

    @staticmethod
    def _run(job: PrepareJob) -> Prepared:
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                result = job.backend.prepare(job.work.spoken, job.work.options)
        except Exception as exc:  # bad text fails its sentence, never the thread
            log.exception("prepare failed for request %s", job.work.request_id)
            return Prepared(job.work, error=exc, seconds=time.perf_counter() - t0)
        return Prepared(job.work, result, seconds=time.perf_counter() - t0)

    def _finish(self, done: Prepared) -> None:
        with self._cv:
            self._done.append(done)
