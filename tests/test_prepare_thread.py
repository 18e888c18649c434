"""The prepare thread (engine.prepare_threads): prefills of a backend that splits them run beside
the engine's steps, and nothing else changes: the same audio, a sentence that leaves while being
prepared never reaches a slot, a failure fails its sentence only, the engine thread does not spin
while it waits, and takes a queued job itself when it has nothing else to do."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from stream_server.engine.backend import PrefillResult, PreparingBackend
from stream_server.engine.engine import Engine, EngineConfig, prepare_threads
from stream_server.engine.requests import CancelRequest, ErrorEvent, SynthesisOptions
from stream_server.engine.scheduler import SchedulerConfig
from stream_server.engine.step import StepResult
from test_engine import FakeArBackend, audio_of, request, run


class PreparingFake(FakeArBackend):
    """FakeArBackend with its prefill split in two; `gate` (when set) holds prepare() until opened,
    and every prepare records the thread it ran on."""

    def __init__(self, max_slots: int = 4) -> None:
        super().__init__(max_slots)
        self.gate: threading.Event | None = None
        self.prepared_on: list[str] = []
        self.loaded: list[int] = []

    def prepare(self, spoken: str, options: SynthesisOptions) -> str:
        self.prepared_on.append(threading.current_thread().name)
        if self.gate is not None and "WAIT" in spoken:
            assert self.gate.wait(30)
        if "FAIL" in spoken:
            raise ValueError("cannot speak this")
        return spoken

    def load(self, slot: int, prepared: str) -> PrefillResult:
        self.loaded.append(slot)
        return super().prefill(slot, prepared, SynthesisOptions())


def make_engine(backend, threads: int = 1) -> Engine:
    cfg = EngineConfig(SchedulerConfig(4, 10_000), first_chunk_frames=6, chunk_frames=12, prepare_threads=threads)
    return Engine({backend.name: backend}, cfg)


def test_the_fake_is_a_preparing_backend_and_auto_spares_a_core():
    assert isinstance(PreparingFake(), PreparingBackend)
    assert not isinstance(FakeArBackend(), PreparingBackend)
    assert prepare_threads(0) == 0 and prepare_threads(2) == 2
    assert prepare_threads("auto") in (0, 1)


def test_prepared_sentences_stream_the_same_audio_as_inline_ones():
    texts = ["hello there", "a much longer sentence to speak", "short", "another one here", "and a fifth"]
    audio = {}
    for threads in (0, 1):
        backend = PreparingFake()
        engine = make_engine(backend, threads)
        reqs = [request(t, session=f"s{i}") for i, t in enumerate(texts)]
        for r in reqs:
            engine.submit(r)
        out = run(engine, {r.request_id for r in reqs})
        audio[threads] = [audio_of(out[r.request_id]) for r in reqs]
        engine.stop()
    for inline, prepared, text in zip(audio[0], audio[1], texts):
        assert inline.shape == prepared.shape and np.abs(inline - prepared).max() < 1e-5
        assert np.abs(prepared - PreparingFake().offline(text)).max() < 1e-5


def start_on_the_worker(engine: Engine, backend: PreparingFake, r) -> None:
    """Step until `r`'s prepare runs on the prepare thread (meanwhile the engine thread is kept
    from taking the job itself)."""
    preparer = engine.executor.preparer
    run_one, preparer.run_one = preparer.run_one, lambda: False
    try:
        engine.submit(r)
        deadline = time.monotonic() + 30
        while "stream-prepare-0" not in backend.prepared_on:
            engine.step()
            assert time.monotonic() < deadline
    finally:
        preparer.run_one = run_one


def busy_engine(backend: PreparingFake):
    """An engine with a long sentence decoding (step until its first audio)."""
    engine = make_engine(backend)
    busy = request("a long sentence that keeps the engine thread decoding for many steps " * 3, session="z")
    engine.submit(busy)
    out: dict = {}
    while busy.request_id not in out:
        for ev in engine.step():
            out.setdefault(ev.request_id, []).append(ev)
    return engine, busy, out


def test_a_sentence_cancelled_while_preparing_never_reaches_a_slot():
    backend = PreparingFake(max_slots=3)
    backend.gate = threading.Event()
    engine, busy, out = busy_engine(backend)
    slow = request("WAIT for me", session="a")
    start_on_the_worker(engine, backend, slow)
    engine.cancel(CancelRequest(request_id=slow.request_id))
    out = run(engine, {busy.request_id}, out)
    backend.gate.set()
    time.sleep(0.1)
    for _ in range(5):
        engine.step()  # its result arrives now and is dropped
    engine.stop()
    assert slow.request_id not in out
    assert len(backend.loaded) == 1 and backend.state == {}  # only `busy` was loaded, and released
    assert engine.executor.frames_held() == 0 and engine.executor.preparing() == 0
    assert engine.scheduler.active_slots() == {"fake": 0}


def test_a_failing_prepare_fails_its_sentence_only():
    backend = PreparingFake()
    engine = make_engine(backend)
    bad, good = request("FAIL here", session="a"), request("fine text", session="b")
    engine.submit(bad)
    engine.submit(good)
    out = run(engine, {bad.request_id, good.request_id})
    engine.stop()
    (err,) = [e for e in out[bad.request_id] if e.last]
    assert isinstance(err, ErrorEvent) and "cannot speak this" in err.message
    assert np.abs(audio_of(out[good.request_id]) - backend.offline(good.spoken)).max() < 1e-5
    assert engine.scheduler.active_slots() == {"fake": 0}


def test_the_engine_thread_waits_for_the_prepare_thread_without_spinning():
    backend = PreparingFake()
    backend.gate = threading.Event()
    engine = make_engine(backend)
    batches: queue.Queue = queue.Queue()
    engine.start(batches.put)
    try:
        r = request("WAIT a moment")
        engine.submit(r)
        time.sleep(0.5)  # prepare is held: the engine has nothing it can run
        steps_while_waiting = engine.stats.steps
        backend.gate.set()
        events = []
        while not (events and events[-1].last):
            events += batches.get(timeout=30)
    finally:
        engine.stop()
    assert steps_while_waiting <= 2
    assert np.abs(audio_of(events) - backend.offline(r.spoken)).max() < 1e-5


def test_an_idle_engine_thread_prepares_a_queued_sentence_itself():
    backend = PreparingFake()
    backend.gate = threading.Event()
    engine, busy, out = busy_engine(backend)
    held, queued = request("WAIT on the worker", session="a"), request("prepared here", session="b")
    start_on_the_worker(engine, backend, held)
    engine.submit(queued)
    out = run(engine, {busy.request_id, queued.request_id}, out)  # while the worker is still held
    backend.gate.set()
    out = run(engine, {held.request_id}, out)
    engine.stop()
    assert backend.prepared_on.count("stream-prepare-0") == 1 and backend.prepared_on.count("MainThread") == 2
    for r in (held, queued):
        assert np.abs(audio_of(out[r.request_id]) - backend.offline(r.spoken)).max() < 1e-5


def test_the_engine_thread_prepares_while_no_playing_session_is_short_of_audio():
    """With decode work in hand, the engine thread still takes a queued prepare (sessions that
    arrived together are prepared on both cores) unless a playing session is short of audio."""
    from stream_server.engine.step import DecodeWork, PrefillWork, StepPlan

    backend = PreparingFake()
    engine = make_engine(backend)
    executor = engine.executor
    taken: list[bool] = []
    executor.preparer.run_one = lambda: taken.append(True) or False
    executor._preparing[99] = PrefillWork(99, "fake", 3, "x", SynthesisOptions())  # one in flight
    busy = [DecodeWork("fake", (7,), (0,))]
    executor._collect_prepared(StepPlan(decode=busy, short_of_audio=True), StepResult(), {7})  # 7 settled: idle
    executor._collect_prepared(StepPlan(decode=busy, short_of_audio=False), StepResult(), set())
    executor._collect_prepared(StepPlan(decode=busy, short_of_audio=True), StepResult(), set())
    engine.stop()
    assert taken == [True, True]  # idle; not short; but not busy and short
