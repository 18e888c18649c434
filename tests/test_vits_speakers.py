"""The PyTorch port on Piper voices other than joe: a multi-speaker voice (the speaker embedding
conditions the duration predictor, the flow and the decoder, as in Piper's VITS) and a voice with
Piper's "high" decoder, both against onnxruntime running the same ONNX file.

The voices are tiny random models that piper-tts' own training code exports (tests/piper_test_voices.py):
no multi-speaker or high-quality Piper voice is available offline. Random weights test the
arithmetic, not the sound: every conditioning weight is non-zero, so a missing or misplaced
speaker term changes the audio. With noise_scale = noise_w = 0 the graph is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prerequisites import require_module
from stream_server.models.piper_vits.piper_voice import PiperVoice, SynthesisParams

TEXTS = ["Hello there, how are you?", "The quick brown fox jumps over the lazy dog."]
MAX_ABS_DIFF = 1e-4  # measured ~2e-6

# voices exported by piper-tts' training code, each checked against onnxruntime (like test_vits_parity)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def multi(tiny_voices):
    v = tiny_voices["multi"]
    return PiperVoice.from_onnx(v.onnx, v.config)


@pytest.fixture(scope="module")
def high(tiny_voices):
    v = tiny_voices["high"]
    return PiperVoice.from_onnx(v.onnx, v.config)


def _onnx_audio(path, ids: list[int], length_scale: float, speaker: int | None) -> np.ndarray:
    ort = require_module("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([0.0, length_scale, 0.0], dtype=np.float32),
    }
    if speaker is not None:
        feed["sid"] = np.array([speaker], dtype=np.int64)
    return session.run(None, feed)[0].reshape(-1)


def _deterministic(length_scale: float = 1.0, speaker: int | None = None) -> SynthesisParams:
    return SynthesisParams(noise_scale=0.0, length_scale=length_scale, noise_w=0.0, speaker=speaker)


@pytest.mark.parametrize("speaker", [0, 1, 2])
@pytest.mark.parametrize("text,length_scale", [(TEXTS[0], 1.0), (TEXTS[1], 1.3)])
def test_multi_speaker_voice_matches_onnxruntime(tiny_voices, multi, speaker, text, length_scale):
    ids = multi.phoneme_ids(text)
    ref = _onnx_audio(tiny_voices["multi"].onnx, ids, length_scale, speaker)
    out = multi.synthesize(text, _deterministic(length_scale, speaker))
    assert out.shape == ref.shape
    assert float(np.max(np.abs(out - ref))) <= MAX_ABS_DIFF


def test_speakers_differ_in_timing_and_sound(multi):
    ids = multi.phoneme_ids(TEXTS[0])
    durations = [multi.encode(ids, _deterministic(speaker=s)).durations.tolist() for s in range(3)]
    assert len({tuple(d) for d in durations}) == 3  # the duration predictor hears the speaker
    z = multi.latents(ids, _deterministic(speaker=0))
    a, b = multi.decode(z, 0), multi.decode(z, 1)
    assert float(torch.max(torch.abs(a - b))) > 1e-2  # so does the decoder, on the same latents


def test_no_speaker_means_the_configs_default_speaker(multi):
    assert multi.num_speakers == 3 and multi.config.speakers == ["alice", "bob", "carol"]
    assert multi.config.default_speaker_id == 0
    default = multi.synthesize(TEXTS[0], _deterministic())
    assert np.array_equal(default, multi.synthesize(TEXTS[0], _deterministic(speaker=0)))
    with pytest.raises(ValueError, match="out of range"):
        multi.speaker_embedding(3)


def test_batched_decode_gives_each_row_its_own_speaker(multi):
    """The engine vocodes windows of different sessions together: each row keeps its speaker."""
    z = multi.latents(multi.phoneme_ids(TEXTS[1]), _deterministic(speaker=2))[:, :40]
    batch = multi.decode(torch.stack([z, z, z]), [2, 0, 1])
    for row, speaker in enumerate([2, 0, 1]):
        assert torch.allclose(batch[row], multi.decode(z, speaker), atol=1e-5)  # batched convs round differently


def test_high_quality_decoder_matches_onnxruntime(tiny_voices, high):
    assert high.decoder.cfg.res_block_type == 1 and high.hop_length == 256
    assert high.num_speakers == 1 and high.speaker_embedding(None) is None
    ids = high.phoneme_ids(TEXTS[0])
    ref = _onnx_audio(tiny_voices["high"].onnx, ids, 1.0, None)
    out = high.synthesize(TEXTS[0], _deterministic())
    assert out.shape == ref.shape
    assert float(np.max(np.abs(out - ref))) <= MAX_ABS_DIFF


@pytest.mark.parametrize("which,speaker", [("multi", 1), ("high", None)])
def test_windowed_decode_equals_whole_decode(multi, high, which, speaker):
    """The receptive field computed from the layers holds for type-1 blocks and speaker
    conditioning too: a window with that much context decodes its middle exactly."""
    voice = {"multi": multi, "high": high}[which]
    left, right = voice.decoder_receptive_field_frames()
    z = torch.randn(voice.latent_channels, 3 * (left + right) + 10, generator=torch.Generator().manual_seed(0))
    whole = voice.decode(z, speaker)
    start, end = left + 3, left + 13
    window = voice.decode(z[:, start - left : end + right], speaker)
    hop = voice.hop_length
    kept = window[left * hop : (left + end - start) * hop]
    assert torch.allclose(kept, whole[start * hop : end * hop], atol=1e-5)
