"""A GPT-SoVITS v2 voice as an engine backend, built from GPT-SoVITS's own tts_infer.yaml with the
tiny upstream-format checkpoints: its reference prompt, streamed sentences equal to the same
sentence decoded alone (tokens exactly; audio within the streaming vocoder's bound), a request's
tokens independent of the batch, and clear errors for what cannot be loaded or spoken."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpt_sovits_assets
from stream_server.config import GptSovitsVoiceSection
from stream_server.engine.engine import Engine, EngineConfig
from stream_server.engine.requests import AudioEvent, ErrorEvent, SentenceRequest, SynthesisOptions
from stream_server.engine.scheduler import SchedulerConfig
from stream_server.models.gpt_sovits.infer_yaml import voice_from_infer_yaml
from stream_server.models.gpt_sovits.loading import load_gpt_sovits_backend
from stream_server.models.gpt_sovits.sovits_stream import snr_db

GREEDY = dict(top_k=1, top_p=1.0, temperature=1.0)

pytestmark = pytest.mark.slow  # whole voices built from tts_infer.yaml, sentences run to the end


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return gpt_sovits_assets.build(tmp_path_factory.mktemp("gsv"))


@pytest.fixture(scope="module")
def section(assets) -> GptSovitsVoiceSection:
    section, device = voice_from_infer_yaml(assets["infer_yaml"], ref_audio=str(assets["ref"]),
                                            prompt_text=gpt_sovits_assets.PROMPT_TEXT)
    assert device == "cpu"
    return section


@pytest.fixture(scope="module")
def backend(section):
    return load_gpt_sovits_backend("gsv", section, max_slots=4, device="cpu")


@pytest.fixture(scope="module")
def long_backend(assets, section):
    """The first tiny GPT never says EOS: sentences run to max_sec (2.4 s = 60 tokens), long
    enough for several streamed chunks."""
    data = section.model_dump()
    gpt = assets["root"] / "never-stops.ckpt"
    gpt.write_bytes((gpt_sovits_assets.gpt_sovits_fixtures() / "t2s_tiny.ckpt").read_bytes())
    data.update(t2s_weights=str(gpt), max_sec=2.4)
    return load_gpt_sovits_backend("gsv", GptSovitsVoiceSection(**data), max_slots=4, device="cpu")


def run(engine: Engine, requests: list[SentenceRequest], arrive_every: int = 0) -> dict[int, np.ndarray]:
    """Submit (staggered by `arrive_every` steps), step until all are done; audio by request."""
    audio: dict[int, list] = {}
    pending = list(requests)
    done, step = set(), 0
    while len(done) < len(requests):
        if pending and (arrive_every == 0 or step % arrive_every == 0):
            engine.submit(pending.pop(0))
            if arrive_every == 0:
                continue
        for ev in engine.step():
            assert not isinstance(ev, ErrorEvent), ev.message
            if isinstance(ev, AudioEvent):
                audio.setdefault(ev.request_id, []).append(ev.pcm)
                if ev.last:
                    done.add(ev.request_id)
        step += 1
        assert step < 5000
    return {rid: np.concatenate(chunks) for rid, chunks in audio.items()}


def request(text: str, seed: int, session: str = "s", **sampling) -> SentenceRequest:
    return SentenceRequest(session, "default", text, "gsv", SynthesisOptions(seed=seed, **sampling), 0)


def test_the_paths_of_tts_infer_yaml_are_read_as_gpt_sovits_writes_them(assets, section):
    assert section.t2s_weights == str(assets["gpt"]) and section.sovits_weights == str(assets["sovits"])
    assert section.hubert_dir == str(assets["hubert"])


def test_the_reference_prompt_comes_from_the_clip(backend):
    ref = backend.references.get(None)
    # 4 s at 16 kHz + 9600 zeros -> HuBERT frames at 50 Hz -> one token per two frames
    assert abs(ref.prompt_tokens.numel() - (4 * 16000 + 9600) / 320 / 2) <= 1
    assert ref.style.shape == (1, 512, 1) and torch.isfinite(ref.style).all()
    assert ref.prompt_phones and ref.prompt_bert.shape == (1024, len(ref.prompt_phones))


def test_streamed_sentences_equal_each_alone(long_backend):
    """Several sentences with their own seeds and sampling, joining a running batch at different
    steps: the tokens are each one's own; the audio matches decoding it alone within the bound of
    streamed SoVITS decoding (the chunks see 64 tokens back and 8 ahead, not the whole sentence)."""
    engine = Engine({"gsv": long_backend}, EngineConfig(SchedulerConfig(2, 10_000)))
    reqs = [
        request("The first sentence of the test.", seed=1, session="a"),
        request("A second one, sampled warmer.", seed=2, session="b", temperature=1.3, top_k=5),
        request("Third!", seed=3, session="c", **GREEDY),
    ]
    streamed = run(engine, reqs, arrive_every=3)
    for r in reqs:
        alone = long_backend.synthesize_offline(r.spoken, r.options)
        got = streamed[r.request_id]
        # max_sec 2.4 s: upstream stops once more than 25 x 2.4 = 60 tokens were made, i.e. at 61
        assert got.shape == alone.shape == (61 * 1280,)
        assert snr_db(torch.from_numpy(alone), torch.from_numpy(got)) >= 60.0, r.spoken
    engine.step()  # the last release
    assert len(long_backend.slots.free_slots()) == 4 and engine.executor.frames_held() == 0


def test_a_sentence_that_says_eos_is_one_window_and_exact(backend):
    engine = Engine({"gsv": backend}, EngineConfig(SchedulerConfig(4, 10_000)))
    reqs = [request(t, seed=9, **GREEDY) for t in ("Short and sweet.", "Another short one.")]
    streamed = run(engine, reqs)
    for r in reqs:
        alone = backend.synthesize_offline(r.spoken, r.options)
        assert len(alone) == 11 * 1280  # the EOS checkpoint stops after 11 tokens
        np.testing.assert_allclose(streamed[r.request_id], alone, atol=1e-6)


def test_seeds_decide_the_take(long_backend):
    a = long_backend.synthesize_offline("Same words.", SynthesisOptions(seed=1))
    b = long_backend.synthesize_offline("Same words.", SynthesisOptions(seed=1))
    c = long_backend.synthesize_offline("Same words.", SynthesisOptions(seed=2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_what_cannot_be_loaded_or_spoken_says_why(assets, section, backend):
    with pytest.raises(ValueError, match="voice 'x'.*not found"):
        load_gpt_sovits_backend("x", section.model_copy(update={"t2s_weights": "/nope.ckpt"}), 1, "cpu")
    short = assets["root"] / "short.wav"
    gpt_sovits_assets.reference_clip(short, seconds=2.0)
    with pytest.raises(ValueError, match="3-10 s"):
        backend.references.prepare(short, "Hi.", "en")
    with pytest.raises(ValueError, match="'fr' is unknown; supported: auto, auto_yue, en, zh, ja"):
        backend.synthesize_offline("bonjour", SynthesisOptions(extra=(("lang", "fr"),)))
