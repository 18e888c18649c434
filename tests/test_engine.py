"""The engine with small fake backends (fast, no voice needed), driven step by step: `step()` runs
one schedule -> execute -> update iteration on the test's own thread and returns its events, so
nothing here waits on time. Two fakes stand for the two kinds of model the contract serves:
- FakeArBackend knows each sentence's length at prefill (like the AR latent voice);
- FakeSamplingBackend samples one token per step with the request's own seeded generator and
  stops on EOS (like GPT-SoVITS's text-to-semantic decoder): the length is unknown until then."""

from __future__ import annotations

import queue
import threading

import numpy as np
import pytest
import torch

from stream_server.engine.backend import DecodeResult, PrefillResult, keep_frames, known_length_decode
from stream_server.engine.chunking import chunk_bounds
from stream_server.engine.engine import Engine, EngineConfig
from stream_server.engine.requests import (
    AudioEvent,
    CancelRequest,
    ErrorEvent,
    SentenceRequest,
    SynthesisOptions,
    TimingEvent,
)
from stream_server.engine.scheduler import SchedulerConfig

C, HOP, K = 4, 8, 3


class _ConvVocoder:
    """A fixed conv stack with a receptive field of +-3 frames."""

    sample_rate = 8000
    hop_length = HOP
    frame_channels = C
    vocoder_context = (3, 3)
    chunk_frames = None
    fingerprint = "fake"

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.conv = torch.nn.Sequential(
            torch.nn.Conv1d(C, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv1d(8, HOP, 5, padding=2)
        ).eval()
        self.vocode_calls: list[int] = []

    def vocode(self, windows: torch.Tensor, slots, spans) -> list[torch.Tensor]:
        self.vocode_calls.append(len(slots))
        return keep_frames(self._conv(windows), spans, HOP)

    def _conv(self, windows: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y = self.conv(windows)  # [B, HOP, W]
        return y.transpose(1, 2).reshape(windows.shape[0], -1)

    def whole(self, frames: torch.Tensor) -> np.ndarray:
        return self._conv(frames[None])[0].numpy()


class FakeArBackend(_ConvVocoder):
    """Frames depend only on the sentence's text and step, like a real per-slot AR model."""

    name = "fake"

    def __init__(self, max_slots: int = 2) -> None:
        super().__init__()
        self.max_slots = max_slots
        self.state: dict[int, list] = {}  # slot -> [total frames, steps done, base]
        self.batch_sizes: list[int] = []
        self.prefilled: list[str] = []

    def prefill(self, slot: int, spoken: str, options: SynthesisOptions) -> PrefillResult:
        if "FAIL" in spoken:
            raise ValueError("cannot speak this")
        assert slot not in self.state, "slot handed out twice"
        self.prefilled.append(spoken)
        self.state[slot] = [len(spoken) * 3, 0, float(sum(map(ord, spoken)) % 97)]
        n = len(spoken) * 3
        return PrefillResult(None, n, word_frames=[(0, n // 2), (n // 2, n)])

    def decode(self, slots) -> DecodeResult:
        self.batch_sizes.append(len(slots))
        out = torch.empty(len(slots), K, C)
        produced, totals = [], []
        for row, slot in enumerate(slots):
            total, step, base = self.state[slot]
            t = torch.arange(step * K, step * K + K, dtype=torch.float32)[:, None]
            out[row] = torch.sin(base + 0.1 * t + torch.arange(C))
            produced.append(step * K)
            totals.append(total)
            self.state[slot][1] += 1
        return known_length_decode(out, produced, totals)

    def release(self, slot: int) -> None:
        self.state.pop(slot, None)

    def offline(self, spoken: str) -> np.ndarray:
        t = torch.arange(len(spoken) * 3, dtype=torch.float32)[:, None]
        return self.whole(torch.sin(float(sum(map(ord, spoken)) % 97) + 0.1 * t + torch.arange(C)).T)


VOCAB, EOS, MIN_TOKENS, MAX_TOKENS = 16, 0, 4, 80


class FakeSamplingBackend(_ConvVocoder):
    """Samples a token per step from logits that depend on the previous token, with a generator
    of the request's own (seeded from options.seed); EOS (token 0) ends the sentence, masked for
    the first MIN_TOKENS steps. A token becomes one frame (a fixed embedding)."""

    name = "sampler"

    def __init__(self, max_slots: int = 4) -> None:
        super().__init__()
        self.max_slots = max_slots
        g = torch.Generator().manual_seed(1)
        self.table = torch.randn(VOCAB, VOCAB, generator=g)  # previous token -> logits
        self.embed = torch.randn(VOCAB, C, generator=g)
        self.slots: dict[int, dict] = {}
        self.batch_sizes: list[int] = []

    def prefill(self, slot: int, spoken: str, options: SynthesisOptions) -> PrefillResult:
        gen = torch.Generator().manual_seed(options.seed)
        temp = 1.0 if options.temperature is None else options.temperature  # None: the model's default
        self.slots[slot] = {"gen": gen, "prev": len(spoken) % VOCAB or 1, "n": 0, "temp": temp}
        return PrefillResult(None, None)  # the length is up to EOS

    def _next(self, st: dict) -> int:
        logits = self.table[st["prev"]] / st["temp"]
        if st["n"] < MIN_TOKENS:
            logits = logits.clone()
            logits[EOS] = float("-inf")
        return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=st["gen"]))

    def decode(self, slots) -> DecodeResult:
        self.batch_sizes.append(len(slots))
        frames = torch.zeros(len(slots), 1, C)
        lengths, finished = [], []
        for row, slot in enumerate(slots):
            st = self.slots[slot]
            token = self._next(st)
            done = token == EOS or st["n"] + 1 >= MAX_TOKENS
            if token != EOS:
                frames[row, 0] = self.embed[token]
                st["n"] += 1
                st["prev"] = token
            lengths.append(0 if token == EOS else 1)
            finished.append(done)
        return DecodeResult(frames, lengths, finished)

    def release(self, slot: int) -> None:
        self.slots.pop(slot, None)

    def offline(self, spoken: str, options: SynthesisOptions) -> tuple[np.ndarray, int]:
        """The same sampling, alone, on private state: (audio, frames)."""
        temp = 1.0 if options.temperature is None else options.temperature
        st = {"gen": torch.Generator().manual_seed(options.seed), "prev": len(spoken) % VOCAB or 1, "n": 0,
              "temp": temp}
        frames = []
        while True:
            token = self._next(st)
            if token == EOS:
                break
            frames.append(self.embed[token])
            st["n"] += 1
            st["prev"] = token
            if st["n"] >= MAX_TOKENS:
                break
        return self.whole(torch.stack(frames).T), len(frames)


def make_engine(*backends, prefills=4, budget=10_000, first=6, chunk=12) -> Engine:
    cfg = EngineConfig(SchedulerConfig(prefills, budget), first_chunk_frames=first, chunk_frames=chunk)
    return Engine({b.name: b for b in backends}, cfg)


def request(spoken: str, session="s", context="default", ordinal=0, voice="fake", seed=0) -> SentenceRequest:
    return SentenceRequest(session, context, spoken, voice, SynthesisOptions(seed=seed), ordinal)


def run(engine: Engine, until_done: set[int], out: dict[int, list] | None = None, max_steps: int = 10_000):
    """Step until every request in `until_done` closed (last audio or error); events by request
    (added to `out`, which may hold those of earlier steps)."""
    out = {} if out is None else out
    for _ in range(max_steps):
        for ev in engine.step():
            out.setdefault(ev.request_id, []).append(ev)
            if ev.last:
                until_done.discard(ev.request_id)
        if not until_done:
            return out
    raise AssertionError(f"requests {until_done} never finished")


def audio_of(events: list) -> np.ndarray:
    audio = [e for e in events if isinstance(e, AudioEvent)]
    assert [e.index for e in audio] == list(range(len(audio))), "chunks out of order"
    assert audio[-1].last and not any(e.last for e in audio[:-1])
    return np.concatenate([e.pcm for e in audio])


def test_sentences_stream_and_equal_offline_decode():
    backend = FakeArBackend(max_slots=3)
    engine = make_engine(backend)
    texts = ["hello there", "a much longer sentence to speak", "short", "another one here"]
    reqs = [request(t, session=f"s{i}") for i, t in enumerate(texts)]
    for r in reqs:
        engine.submit(r)
    out = run(engine, {r.request_id for r in reqs})
    for r in reqs:
        assert np.abs(audio_of(out[r.request_id]) - backend.offline(r.spoken)).max() < 1e-5
        # word timings come once, before the sentence's first audio
        assert isinstance(out[r.request_id][0], TimingEvent)
        assert sum(isinstance(e, TimingEvent) for e in out[r.request_id]) == 1
    assert max(backend.batch_sizes) == 3  # really batched, and never more than the slots
    engine.step()  # the last releases happen at the start of the next step
    assert not backend.state and engine.executor.frames_held() == 0  # every slot and frame freed
    assert engine.stats.active_slots == {"fake": 0} and engine.stats.finished["finished"] == 4


def test_sentences_join_running_batch_at_next_step():
    backend = FakeArBackend(max_slots=4)
    engine = make_engine(backend)
    long = request("x" * 40, session="a")
    engine.submit(long)
    early = [ev for _ in range(5) for ev in engine.step()]  # long is decoding alone now
    assert backend.batch_sizes == [1] * 5
    late = request("late joiner", session="b")
    engine.submit(late)
    early += engine.step()
    assert backend.batch_sizes[-1] == 2  # joined the running batch at the very next step
    out: dict[int, list] = {}
    for ev in early:
        out.setdefault(ev.request_id, []).append(ev)
    out = run(engine, {late.request_id, long.request_id}, out)
    assert backend.batch_sizes[-1] == 1  # the long one went on alone after the short one left
    assert np.abs(audio_of(out[late.request_id]) - backend.offline(late.spoken)).max() < 1e-5
    assert np.abs(audio_of(out[long.request_id]) - backend.offline(long.spoken)).max() < 1e-5


def test_cancel_frees_slot_at_the_next_step_and_stops_audio():
    backend = FakeArBackend(max_slots=1)
    engine = make_engine(backend)
    victim = request("y" * 60, session="a", context="c1")  # 60 steps if left alone
    waiter = request("next please", session="b")
    engine.submit(victim)
    engine.submit(waiter)
    seen = []
    for _ in range(10):
        seen += engine.step()
    assert backend.prefilled == [victim.spoken]  # the waiter is still waiting for the one slot
    engine.cancel(CancelRequest("a", "c1"))
    steps_before = len(backend.batch_sizes)
    seen += engine.step()
    assert backend.prefilled == [victim.spoken, waiter.spoken]  # the slot went to the waiter at once
    assert len(backend.batch_sizes) == steps_before + 1
    out = run(engine, {waiter.request_id})
    assert out[waiter.request_id][-1].last
    victim_events = [e for e in seen if e.request_id == victim.request_id] + out.get(victim.request_id, [])
    assert victim_events and not any(e.last for e in victim_events)  # it spoke, then never again
    assert victim.request_id not in out
    assert engine.stats.finished["cancelled"] == 1


def test_failing_sentence_reports_error_and_others_continue():
    backend = FakeArBackend(max_slots=2)
    engine = make_engine(backend)
    bad, good = request("please FAIL now", session="a"), request("all is well", session="b")
    engine.submit(bad)
    engine.submit(good)
    out = run(engine, {bad.request_id, good.request_id})
    (err,) = out[bad.request_id]
    assert isinstance(err, ErrorEvent) and "cannot speak" in err.message
    assert np.abs(audio_of(out[good.request_id]) - backend.offline(good.spoken)).max() < 1e-5
    engine.step()
    assert engine.stats.active_slots == {"fake": 0} and engine.stats.finished["failed"] == 1


def test_step_error_fails_sentences_in_flight_and_engine_keeps_serving():
    backend = FakeArBackend(max_slots=2)
    engine = make_engine(backend)
    first = request("first sentence", session="a")
    engine.submit(first)
    original = engine.executor.execute
    engine.executor.execute = lambda plan: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        engine.step()
    engine.executor.execute = original
    (err,) = engine.fail_in_flight("engine error: boom")
    assert isinstance(err, ErrorEvent) and err.request_id == first.request_id
    second = request("second sentence", session="b")
    engine.submit(second)
    out = run(engine, {second.request_id})
    assert np.abs(audio_of(out[second.request_id]) - backend.offline(second.spoken)).max() < 1e-5
    assert first.request_id not in out
    engine.step()
    assert engine.stats.active_slots == {"fake": 0} and not backend.state


def test_vocoder_batches_equal_windows_and_splits_at_the_cap():
    backend = FakeArBackend(max_slots=6)
    engine = make_engine(backend, prefills=6)
    engine.config.max_vocoder_batch = 4
    engine.executor.max_vocoder_batch = 4
    reqs = [request("same length", session=f"s{i}") for i in range(6)]
    for r in reqs:
        engine.submit(r)
    out = run(engine, {r.request_id for r in reqs})
    assert max(backend.vocode_calls) == 4 and 2 in backend.vocode_calls
    for r in reqs:
        assert np.abs(audio_of(out[r.request_id]) - backend.offline(r.spoken)).max() < 1e-5


# --- sampled, EOS-terminated sequences ------------------------------------------------------------
def test_sampled_sequences_of_unknown_length_stream_and_equal_offline():
    backend = FakeSamplingBackend(max_slots=4)
    engine = make_engine(backend)
    reqs = [request(f"sentence number {i}", session=f"s{i}", voice="sampler", seed=100 + i) for i in range(6)]
    for r in reqs:
        engine.submit(r)
    out = run(engine, {r.request_id for r in reqs})
    cfg = engine.chunk_config("sampler")
    for r in reqs:
        reference, n_frames = backend.offline(r.spoken, r.options)
        audio = [e for e in out[r.request_id] if isinstance(e, AudioEvent)]
        assert np.abs(audio_of(audio) - reference).max() < 1e-5
        # chunks cut while the length was unknown are the ones a known length would give
        assert [len(e.pcm) // HOP for e in audio] == [b - a for a, b in chunk_bounds(n_frames, cfg)]
    lengths = {len(audio_of(out[r.request_id])) for r in reqs}
    assert len(lengths) > 1  # EOS really decided: the sentences differ in length
    assert max(backend.batch_sizes) == 4


def test_sampled_tokens_depend_on_the_request_only_not_on_the_batch():
    alone_backend = FakeSamplingBackend(max_slots=1)
    alone = make_engine(alone_backend)
    probe = request("probe sentence", session="p", voice="sampler", seed=7)
    alone.submit(probe)
    alone_audio = audio_of(run(alone, {probe.request_id})[probe.request_id])

    crowded_backend = FakeSamplingBackend(max_slots=4)
    crowded = make_engine(crowded_backend)
    others = [request(f"other {i}", session=f"o{i}", voice="sampler", seed=i) for i in range(5)]
    for r in others[:3]:
        crowded.submit(r)
    out: dict[int, list] = {}
    for ev in [ev for _ in range(3) for ev in crowded.step()]:  # the probe joins a running batch
        out.setdefault(ev.request_id, []).append(ev)
    twin = request("probe sentence", session="p", voice="sampler", seed=7)
    crowded.submit(twin)
    for r in others[3:]:
        crowded.submit(r)
    out = run(crowded, {twin.request_id, *(r.request_id for r in others)}, out)
    assert max(crowded_backend.batch_sizes) == 4
    np.testing.assert_array_equal(audio_of(out[twin.request_id]), alone_audio)
    reseeded = make_engine(FakeSamplingBackend(max_slots=1))
    other_seed = request("probe sentence", session="p", voice="sampler", seed=8)
    reseeded.submit(other_seed)
    other_audio = audio_of(run(reseeded, {other_seed.request_id})[other_seed.request_id])
    assert other_audio.shape != alone_audio.shape or not np.array_equal(other_audio, alone_audio)


def test_two_model_families_share_one_engine():
    ar, sampler = FakeArBackend(max_slots=2), FakeSamplingBackend(max_slots=2)
    engine = make_engine(ar, sampler)
    a = request("known length", session="a")
    b = request("unknown length", session="b", voice="sampler", seed=3)
    engine.submit(a)
    engine.submit(b)
    out = run(engine, {a.request_id, b.request_id})
    assert np.abs(audio_of(out[a.request_id]) - ar.offline(a.spoken)).max() < 1e-5
    assert np.abs(audio_of(out[b.request_id]) - sampler.offline(b.spoken, b.options)[0]).max() < 1e-5


# --- the engine thread ---------------------------------------------------------------------------
def test_engine_thread_runs_the_model_alone_and_publishes_each_step_once():
    backend = FakeArBackend(max_slots=2)
    seen: set[str] = set()
    original = backend.decode

    def spy(slots):
        seen.add(threading.current_thread().name)
        return original(slots)

    backend.decode = spy
    engine = make_engine(backend)
    batches: queue.Queue = queue.Queue()
    engine.start(batches.put)
    try:
        r = request("thread check")
        engine.submit(r)
        events = []
        while not (events and events[-1].last):
            batch = batches.get(timeout=30)
            assert batch and isinstance(batch, list)  # one non-empty list per step
            events += batch
    finally:
        engine.stop()
    assert seen == {"stream-engine"}
    assert np.abs(audio_of(events) - backend.offline(r.spoken)).max() < 1e-5


def test_engine_thread_survives_a_step_error():
    backend = FakeArBackend(max_slots=2)
    engine = make_engine(backend)
    original = engine.executor.execute
    broken = {"once": True}

    def explode(plan):
        if plan.vocode and broken.pop("once", False):
            raise RuntimeError("boom")
        return original(plan)

    engine.executor.execute = explode
    batches: queue.Queue = queue.Queue()
    engine.start(batches.put)
    try:
        first = request("first sentence", session="a")
        engine.submit(first)
        events = []
        while not any(e.last for e in events):
            events += batches.get(timeout=30)
        (err,) = [e for e in events if e.last]
        assert isinstance(err, ErrorEvent) and err.request_id == first.request_id and "boom" in err.message
        second = request("second sentence", session="b")
        engine.submit(second)
        events = []
        while not (events and events[-1].last):
            events += [e for e in batches.get(timeout=30) if e.request_id == second.request_id]
    finally:
        engine.stop()
    assert np.abs(audio_of(events) - backend.offline(second.spoken)).max() < 1e-5


def test_a_call_when_idle_waits_for_the_voices_sentences_and_holds_new_ones_back():
    """Changing a voice's weights must not overlap its sentences: the call runs once the voice's
    sentences in flight are done (their slots released), and sentences that arrive meanwhile wait."""
    backend = FakeArBackend(max_slots=2)
    engine = make_engine(backend)
    running = request("already speaking", session="a")
    engine.submit(running)
    out = run(engine, set(), max_steps=3)  # it is decoding
    seen_state: list[dict] = []
    future = engine.call_when_idle("fake", lambda: seen_state.append(dict(backend.state)) or "swapped")
    waiting = request("arrives during the change", session="b")
    engine.submit(waiting)
    out = run(engine, {running.request_id}, out)
    assert not future.done() and backend.prefilled == [running.spoken]  # the newcomer waits too
    engine.step()  # the last slot is released, then the call runs
    assert future.result(timeout=0) == "swapped" and seen_state == [{}]  # no slot held during the call
    assert backend.prefilled == [running.spoken]  # the newcomer is admitted after it
    out = run(engine, {waiting.request_id}, out)
    assert np.abs(audio_of(out[waiting.request_id]) - backend.offline(waiting.spoken)).max() < 1e-5


def test_a_call_when_idle_on_an_idle_engine_runs_at_once():
    backend = FakeArBackend(max_slots=1)
    engine = make_engine(backend)
    future = engine.call_when_idle("fake", lambda: "done")
    assert engine.step() == [] and future.result(timeout=0) == "done"
    assert not engine.scheduler.paused  # the voice admits again
    engine.start(lambda events: None)
    try:  # and on the engine's own thread, which was waiting for work
        assert engine.call_when_idle("fake", lambda: "again").result(timeout=10) == "again"
    finally:
        engine.stop()


def test_torch_threads_leave_the_event_loop_a_core():
    import os

    from stream_server.engine.engine import torch_threads

    cores = len(os.sched_getaffinity(0))
    assert torch_threads(0) == max(1, cores - 1) and torch_threads(0) < cores + (cores == 1)
    assert torch_threads(3) == 3 and torch_threads(-1) is None  # as configured; torch's own
