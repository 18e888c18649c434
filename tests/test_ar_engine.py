"""The AR acoustic model served by the engine: continuous batching gives each sentence the same
audio as decoding it alone, with the shipped voice's weights (streamed == offline)."""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest
import torch

from stream_server.engine.executor import Engine, EngineConfig
from stream_server.engine.requests import ErrorEvent, SentenceRequest, SynthesisOptions, TimingEvent
from stream_server.engine.scheduler import ChunkConfig, SchedulerConfig
from stream_server.engine.voice_backends import ArBackend
from stream_server.model.ar_acoustic import ArAcousticModel
from stream_server.model.ar_weights import load_model, packaged_weights_path

pytestmark = pytest.mark.slow

TEXTS = [
    "One short line.",
    "A somewhat longer sentence that keeps going for a while.",
    "Third!",
    "Here comes the fourth sentence, joining late.",
    "And a fifth, which must wait for a free slot.",
]


def shipped_model() -> ArAcousticModel:
    return load_model(packaged_weights_path())


def alone(piper, text: str) -> np.ndarray:
    """Reference: a fresh model, this sentence only, then a whole-sentence decode."""
    backend = ArBackend("ar", piper, shipped_model(), max_slots=1)
    with torch.inference_mode():
        out = backend.prefill(0, text, SynthesisOptions(seed=1))
        steps = []
        while sum(s.shape[1] for s in steps) < out.num_frames:
            steps.append(backend.decode_step([0]))
        frames = torch.cat(steps, dim=1)[0, : out.num_frames].T  # [C, F]
        return piper.decode(frames[None])[0].numpy()


def test_batched_ar_sentences_equal_each_alone(piper):
    backend = ArBackend("ar", piper, shipped_model(), max_slots=3)
    left, right = piper.decoder_receptive_field_frames()
    chunks = ChunkConfig(18, 64, left, right)
    engine = Engine({"ar": backend}, EngineConfig(SchedulerConfig(2, 384, chunks)))
    calls: list[int] = []
    step = backend.decode_step
    backend.decode_step = lambda slots: calls.append(len(slots)) or step(slots)
    events: queue.Queue = queue.Queue()
    engine.start()
    requests = []
    for i, text in enumerate(TEXTS):  # staggered arrivals: sentences join a running batch
        req = SentenceRequest(f"s{i}", "default", text, "ar", SynthesisOptions(seed=1), 0, events.put)
        requests.append(req)
        engine.submit(req)
        time.sleep(0.05)
    got: dict[int, list] = {}
    timed: set[int] = set()
    finished = 0
    while finished < len(TEXTS):
        ev = events.get(timeout=120)
        assert not isinstance(ev, ErrorEvent), ev.message
        if isinstance(ev, TimingEvent):  # word timings: once, before the sentence's audio
            assert ev.request_id not in got and ev.request_id not in timed
            timed.add(ev.request_id)
            continue
        got.setdefault(ev.request_id, []).append(ev.pcm)
        finished += ev.last
    engine.stop()
    assert max(calls) == 3 and 1 in calls  # batches grew to the slot limit and shrank again
    assert engine.active_slots() == {"ar": 0}
    assert timed == {r.request_id for r in requests}  # the AR backend gives word timings too
    for req in requests:
        streamed = np.concatenate(got[req.request_id])
        reference = alone(piper, req.text)
        assert streamed.shape == reference.shape
        assert np.abs(streamed - reference).max() <= 1e-3, req.text
