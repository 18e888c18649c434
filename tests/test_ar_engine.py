"""The AR acoustic model served by the engine: continuous batching gives each sentence the same
audio as decoding it alone, with the shipped voice's weights (streamed == offline). The engine is
driven step by step: sentences arrive at chosen steps and join a running batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stream_server.engine.engine import Engine, EngineConfig
from stream_server.engine.requests import AudioEvent, ErrorEvent, SentenceRequest, SynthesisOptions, TimingEvent
from stream_server.engine.scheduler import SchedulerConfig
from stream_server.models.ar_latent.ar_weights import load_model, packaged_weights_path
from stream_server.models.ar_latent.backend import ArBackend

pytestmark = pytest.mark.slow

TEXTS = [
    "One short line.",
    "A somewhat longer sentence that keeps going for a while.",
    "Third!",
    "Here comes the fourth sentence, joining late.",
    "And a fifth, which must wait for a free slot.",
]
ARRIVAL_STEP = [0, 2, 4, 6, 8]  # staggered: later sentences join a batch already decoding


@pytest.fixture(scope="module")
def shipped():
    return load_model(packaged_weights_path())


def alone(piper, model, text: str) -> np.ndarray:
    """Reference: a backend of its own with one slot, this sentence only, then a whole-sentence
    decode of all its frames."""
    backend = ArBackend("ar", piper, model, max_slots=1)
    with torch.inference_mode():
        out = backend.prefill(0, text, SynthesisOptions(seed=1))
        rows = []
        while True:
            step = backend.decode([0])
            rows.append(step.frames[0, : step.lengths[0]])
            if step.finished[0]:
                break
        frames = torch.cat(rows).T  # [C, F]
        assert frames.shape[1] == out.total
        return piper.decode(frames[None])[0].numpy()


def test_batched_ar_sentences_equal_each_alone(piper, shipped):
    backend = ArBackend("ar", piper, shipped, max_slots=3)
    engine = Engine({"ar": backend}, EngineConfig(SchedulerConfig(2, 384)))
    calls: list[int] = []
    decode = backend.decode
    backend.decode = lambda slots: calls.append(len(slots)) or decode(slots)
    requests = [SentenceRequest(f"s{i}", "default", t, "ar", SynthesisOptions(seed=1), 0) for i, t in enumerate(TEXTS)]
    got: dict[int, list] = {}
    timed: set[int] = set()
    finished, step = 0, 0
    with torch.inference_mode():
        while finished < len(TEXTS):
            for req, at in zip(requests, ARRIVAL_STEP):
                if at == step:
                    engine.submit(req)
            for ev in engine.step():
                assert not isinstance(ev, ErrorEvent), ev.message
                if isinstance(ev, TimingEvent):  # word timings: once, before the sentence's audio
                    assert ev.request_id not in got and ev.request_id not in timed
                    timed.add(ev.request_id)
                    continue
                assert isinstance(ev, AudioEvent)
                got.setdefault(ev.request_id, []).append(ev.pcm)
                finished += ev.last
            step += 1
        engine.step()  # releases the last slots
    assert max(calls) == 3 and 1 in calls  # batches grew to the slot limit and shrank again
    assert engine.stats.active_slots == {"ar": 0} and engine.executor.frames_held() == 0
    assert timed == {r.request_id for r in requests}  # the AR backend gives word timings too
    for req in requests:
        streamed = np.concatenate(got[req.request_id])
        reference = alone(piper, shipped, req.spoken)
        assert streamed.shape == reference.shape
        assert np.abs(streamed - reference).max() <= 1e-3, req.spoken
        offline = backend.synthesize_offline(req.spoken, req.options)  # private slot, same code path
        assert np.abs(offline - reference).max() <= 1e-3, req.spoken
