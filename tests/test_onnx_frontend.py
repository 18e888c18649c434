"""engine.prefill_runtime: onnxruntime. The Piper voice's text encoder and duration predictor and the
AR voice's conditioning stack, exported from the torch modules and run by onnxruntime, give the torch
modules' outputs (to float rounding) at any sentence length, multi-speaker voices included; the
cache keys name the runtime; auto picks it on the CPU only."""

from __future__ import annotations

import copy

import pytest
import torch

from stream_server.config import AppConfig
from stream_server.models.ar_latent.ar_weights import load_model, packaged_weights_path
from stream_server.models.loading import build_backends
from stream_server.models.piper_vits.piper_voice import PiperVoice, SynthesisParams
from stream_server.models.piper_vits.voice_files import PiperVoices

pytestmark = pytest.mark.slow

TOL = 1e-4  # measured ~6e-6
# The duration flows' rational-quadratic splines amplify float rounding (other thread counts sum in
# another order): log durations differed by up to 1.3e-4 once under a loaded full run. 1e-3 of a log
# duration is 0.1% of a phoneme's length; the frames themselves are compared exactly below.
LOG_DURATION_TOL = 1e-3
TEXTS = ["Hi.", "The lantern flickered twice, then the gate swung open.",
         "Your flight to Denver has been delayed until 9:45 tonight, and the crew apologizes for the wait."]


def on_onnx(voice: PiperVoice, cache_dir) -> PiperVoice:
    copied = copy.deepcopy(voice)
    copied.use_onnx_frontend(cache_dir)
    return copied


@pytest.mark.parametrize("text", TEXTS)
def test_text_encoder_and_durations_match_torch(piper, tmp_path, text):
    onnx = on_onnx(piper, tmp_path)
    ids = torch.tensor([piper.phoneme_ids(text)])
    with torch.inference_mode():
        want = piper.text_encoder(ids)
        got = onnx._onnx_frontend.text(ids)
        for w, g in zip(want, got):
            assert w.shape == g.shape and float((w - g).abs().max()) <= TOL
        noise = torch.randn(1, 2, ids.shape[1], generator=torch.Generator().manual_seed(5))
        logw = piper.duration(want[0], noise, None)
        assert float((onnx._onnx_frontend.durations(want[0], noise, None) - logw).abs().max()) <= LOG_DURATION_TOL
    # the whole prefill: the same frames (durations) and prior means
    a, b = piper.encode(ids[0].tolist(), SynthesisParams(seed=3)), onnx.encode(ids[0].tolist(), SynthesisParams(seed=3))
    assert torch.equal(a.durations, b.durations)
    assert float((a.m_frames - b.m_frames).abs().max()) <= TOL


def test_a_multi_speaker_voice_conditions_its_durations(tiny_voices, tmp_path):
    v = tiny_voices["multi"]
    voice = PiperVoice.from_onnx(v.onnx, v.config)
    onnx = on_onnx(voice, tmp_path)
    ids = torch.tensor([voice.phoneme_ids("Two speakers, one sentence.")])
    with torch.inference_mode():
        hidden = voice.text_encoder(ids)[0]
        noise = torch.randn(1, 2, ids.shape[1], generator=torch.Generator().manual_seed(1))
        for speaker in (0, 2):
            g = voice.speaker_embedding(speaker)
            want = voice.duration(hidden, noise, g)
            assert float((onnx._onnx_frontend.durations(hidden, noise, g) - want).abs().max()) <= LOG_DURATION_TOL


@pytest.mark.parametrize("frames", [1, 2, 3, 29, 100, 301])
def test_the_ar_conditioning_matches_torch_at_any_length(tmp_path, frames):
    model = load_model(packaged_weights_path())
    cond = torch.randn(model.cfg.cond_dim, frames, generator=torch.Generator().manual_seed(frames))
    with torch.inference_mode():
        want = model.encode_condition(cond)
        model.use_onnx_condition(tmp_path)
        got = model.encode_condition(cond)
    for w, g in zip(want, got):
        assert w.shape == g.shape and float((w - g).abs().max()) <= TOL


def test_auto_is_onnxruntime_on_the_cpu_only_and_the_cache_keys_say_so(tmp_path):
    assert PiperVoices("cpu", prefill_runtime="auto").prefill_runtime == "onnxruntime"
    assert PiperVoices("cuda", prefill_runtime="auto").prefill_runtime == "torch"
    with pytest.raises(ValueError, match="prefill_runtime onnxruntime runs on the CPU"):
        PiperVoices("cuda", prefill_runtime="onnxruntime")
    cfg = AppConfig()
    cfg.engine.onnx_cache_dir = str(tmp_path)
    on_onnx_prefill = build_backends(cfg)
    cfg.engine.prefill_runtime = "torch"
    on_torch = build_backends(cfg)
    for name in ("joe_ar", "joe"):
        assert ":prefill=onnxruntime" in on_onnx_prefill[name].fingerprint
        assert on_onnx_prefill[name].fingerprint != on_torch[name].fingerprint
    assert ":condition=onnxruntime" in on_onnx_prefill["joe_ar"].fingerprint
