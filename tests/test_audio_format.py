"""Per-sentence streaming resampling and PCM encodings."""

from __future__ import annotations

import numpy as np
import pytest

from stream_server.audio.formats import (
    SAMPLE_RATES,
    AudioFormatError,
    SentenceEncoder,
    check_output,
    encode_pcm,
    resample,
)


def chirp(n: int = 22050) -> np.ndarray:
    t = np.arange(n) / 22050
    return (0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t)).astype(np.float32)


@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_chunked_resampling_equals_whole(rate):
    audio = chirp()
    enc = SentenceEncoder(22050, rate, "pcm_f32le")
    cuts = [0, 4608, 4608 + 16384, len(audio)]  # a small first chunk, then larger ones
    out = b"".join(
        enc.encode(audio[a:b], last=(b == len(audio))) for a, b in zip(cuts, cuts[1:])
    )
    got = np.frombuffer(out, dtype="<f4")
    want = resample(audio, 22050, rate)
    assert enc.samples == len(got)
    assert abs(len(got) - len(want)) <= 1
    n = min(len(got), len(want))
    assert np.abs(got[:n] - want[:n]).max() < 1e-4


def test_s16_encoding_clips_and_rounds():
    pcm = np.frombuffer(encode_pcm(np.array([0.0, 0.5, -2.0, 2.0], np.float32), "pcm_s16le"), "<i2")
    assert pcm.tolist() == [0, 16384, -32767, 32767]


@pytest.mark.parametrize("rate, fmt, code", [(12000, "pcm_s16le", "unsupported_sample_rate"),
                                             (16000, "mp3", "unsupported_format")])
def test_check_output_rejects(rate, fmt, code):
    with pytest.raises(AudioFormatError) as err:
        check_output(rate, fmt)
    assert err.value.code == code


def test_ulaw_is_8k_only_and_matches_g711():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    check_output(8000, "ulaw")
    with pytest.raises(AudioFormatError) as err:
        check_output(16000, "ulaw")
    assert err.value.code == "unsupported_format" and "8000" in str(err.value)
    audio = chirp(4000)
    s16 = encode_pcm(audio, "pcm_s16le")
    assert encode_pcm(audio, "ulaw") == audioop.lin2ulaw(s16, 2)
