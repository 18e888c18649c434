"""The engine thread with a small fake autoregressive backend (fast, no voice needed)."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import torch

from stream_server.engine.backend import PrefillOutput
from stream_server.engine.executor import Engine, EngineConfig
from stream_server.engine.requests import (
    AudioEvent,
    CancelRequest,
    ErrorEvent,
    SentenceRequest,
    SynthesisOptions,
)
from stream_server.engine.scheduler import ChunkConfig, SchedulerConfig

C, HOP, K = 4, 8, 3


class FakeArBackend:
    """Frames depend only on the sentence's text and step, like a real per-slot AR model.
    The vocoder is a fixed conv stack with a receptive field of +-3 frames."""

    name = "fake"
    sample_rate = 8000
    hop_length = HOP
    latent_channels = C

    def __init__(self, max_slots: int = 2, step_delay: float = 0.0) -> None:
        self.max_slots = max_slots
        self.step_delay = step_delay
        self.state: dict[int, list] = {}
        self.batch_sizes: list[int] = []
        self.active_at_step: list[set[int]] = []
        torch.manual_seed(0)
        self.conv = torch.nn.Sequential(
            torch.nn.Conv1d(C, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv1d(8, HOP, 5, padding=2)
        ).eval()

    def prefill(self, slot: int, text: str, options: SynthesisOptions) -> PrefillOutput:
        if "FAIL" in text:
            raise ValueError("cannot speak this")
        assert slot not in self.state, "slot handed out twice"
        self.state[slot] = [len(text) * 3, 0, float(sum(map(ord, text)) % 97)]
        return PrefillOutput(num_frames=len(text) * 3, frames=None)

    def decode_step(self, slots: list[int]) -> torch.Tensor:
        time.sleep(self.step_delay)
        self.batch_sizes.append(len(slots))
        self.active_at_step.append(set(slots))
        out = torch.empty(len(slots), K, C)
        for row, slot in enumerate(slots):
            _, step, base = self.state[slot]
            t = torch.arange(step * K, step * K + K, dtype=torch.float32)[:, None]
            out[row] = torch.sin(base + 0.1 * t + torch.arange(C))
            self.state[slot][1] += 1
        return out

    def release(self, slot: int) -> None:
        del self.state[slot]

    def vocode(self, windows: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y = self.conv(windows)  # [B, HOP, W]
        return y.transpose(1, 2).reshape(windows.shape[0], -1)

    def offline(self, text: str) -> np.ndarray:
        n = len(text) * 3
        t = torch.arange(n, dtype=torch.float32)[:, None]
        frames = torch.sin(float(sum(map(ord, text)) % 97) + 0.1 * t + torch.arange(C)).T
        return self.vocode(frames[None])[0].numpy()


CHUNKS = ChunkConfig(first_chunk_frames=6, chunk_frames=12, left_context=3, right_context=3)


def make_engine(backend, prefills=4) -> Engine:
    cfg = EngineConfig(SchedulerConfig(prefills, 10_000, CHUNKS))
    engine = Engine({"fake": backend}, cfg)
    engine.start()
    return engine


class Collector:
    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()

    def request(self, text: str, session="s", context="default", ordinal=0) -> SentenceRequest:
        return SentenceRequest(session, context, text, "fake", SynthesisOptions(), ordinal, self.events.put)

    def gather(self, n_sentences: int, timeout: float = 10.0) -> dict[int, list]:
        done, out = 0, {}
        deadline = time.monotonic() + timeout
        while done < n_sentences:
            ev = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            out.setdefault(ev.request_id, []).append(ev)
            if isinstance(ev, ErrorEvent) or ev.last:
                done += 1
        return out


def audio_of(events: list) -> np.ndarray:
    assert [e.index for e in events] == list(range(len(events))), "chunks out of order"
    return np.concatenate([e.pcm for e in events])


def test_sentences_stream_and_equal_offline_decode():
    backend = FakeArBackend(max_slots=3)
    engine = make_engine(backend)
    col = Collector()
    texts = ["hello there", "a much longer sentence to speak", "short", "another one here"]
    reqs = [col.request(t, session=f"s{i}") for i, t in enumerate(texts)]
    for r in reqs:
        engine.submit(r)
    out = col.gather(len(texts))
    engine.stop()
    for r in reqs:
        assert np.abs(audio_of(out[r.request_id]) - backend.offline(r.text)).max() < 1e-5
    assert max(backend.batch_sizes) == 3  # really batched, and never more than the slots
    assert not backend.state  # every slot released


def test_sentences_join_running_batch_at_next_step():
    backend = FakeArBackend(max_slots=4, step_delay=0.01)
    engine = make_engine(backend)
    col = Collector()
    long = col.request("x" * 40, session="a")
    engine.submit(long)
    time.sleep(0.1)  # long is decoding alone now
    late = col.request("late joiner", session="b")
    engine.submit(late)
    out = col.gather(2)
    engine.stop()
    sizes = backend.batch_sizes
    assert sizes[0] == 1 and 2 in sizes, sizes  # joined the running batch
    assert sizes[-1] == 1  # the long one went on alone after the short one left
    assert np.abs(audio_of(out[late.request_id]) - backend.offline(late.text)).max() < 1e-5


def test_cancel_frees_slot_within_one_step_and_stops_audio():
    backend = FakeArBackend(max_slots=1, step_delay=0.01)
    prefill_at: dict[str, int] = {}
    original = backend.prefill

    def spy(slot, text, options):
        prefill_at[text] = len(backend.batch_sizes)
        return original(slot, text, options)

    backend.prefill = spy
    engine = make_engine(backend)
    col = Collector()
    victim = col.request("y" * 60, session="a", context="c1")  # 60 steps if left alone
    waiter = col.request("next please", session="b")
    engine.submit(victim)
    engine.submit(waiter)
    time.sleep(0.1)
    steps_at_cancel = len(backend.batch_sizes)
    engine.cancel(CancelRequest("a", "c1"))
    out = col.gather(1)  # only the waiter finishes
    engine.stop()
    assert out[waiter.request_id][-1].last
    assert not any(e.last for e in out.get(victim.request_id, []))  # never completed
    # The single slot went to the waiter at the next step (one step of slack for the race
    # between reading the counter here and the engine draining its inbox).
    assert prefill_at[waiter.text] - steps_at_cancel <= 1
    late = [e for e in list(col.events.queue) if e.request_id == victim.request_id]
    assert not any(e.last for e in late)


def test_failing_sentence_reports_error_and_others_continue():
    backend = FakeArBackend(max_slots=2)
    engine = make_engine(backend)
    col = Collector()
    bad = col.request("please FAIL now")
    good = col.request("all is well")
    engine.submit(bad)
    engine.submit(good)
    out = col.gather(2)
    engine.stop()
    (err,) = out[bad.request_id]
    assert isinstance(err, ErrorEvent) and "cannot speak" in err.message
    assert isinstance(out[good.request_id][-1], AudioEvent)
    assert np.abs(audio_of(out[good.request_id]) - backend.offline(good.text)).max() < 1e-5
    assert engine.active_slots() == {"fake": 0}


def test_engine_runs_model_only_on_its_own_thread():
    backend = FakeArBackend(max_slots=2)
    seen: set[str] = set()
    original = backend.decode_step

    def spy(slots):
        seen.add(threading.current_thread().name)
        return original(slots)

    backend.decode_step = spy
    engine = make_engine(backend)
    col = Collector()
    engine.submit(col.request("thread check"))
    col.gather(1)
    engine.stop()
    assert seen == {"stream-engine"}


def test_unexpected_engine_error_fails_sentences_and_engine_keeps_serving():
    backend = FakeArBackend(max_slots=2)
    engine = make_engine(backend)
    original = engine._vocode
    broken = {"once": True}

    def explode(tasks):
        if tasks and broken.pop("once", False):
            raise RuntimeError("boom")
        return original(tasks)

    engine._vocode = explode
    col = Collector()
    first = col.request("first sentence")
    engine.submit(first)
    out = col.gather(1)
    assert isinstance(out[first.request_id][-1], ErrorEvent)
    second = col.request("second sentence")
    engine.submit(second)
    out = col.gather(1)
    engine.stop()
    assert np.abs(audio_of(out[second.request_id]) - backend.offline(second.text)).max() < 1e-5
    assert engine.active_slots() == {"fake": 0}
