"""What compressed audio says: mp3 decoded with `av`, transcribed by the offline Whisper judge
(stream_server/intelligibility.py), loaded once per test run."""

from __future__ import annotations

import functools
import io

import numpy as np

from prerequisites import require_module


def decode_mp3(data: bytes) -> tuple[np.ndarray, int]:
    """mp3 bytes -> (float mono samples, sample rate)."""
    av = require_module("av")
    with av.open(io.BytesIO(data), format="mp3") as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        rate = stream.rate
    audio = np.concatenate(frames).astype(np.float32)
    return (audio / 32768 if np.abs(audio).max() > 1.5 else audio), rate


@functools.cache
def _judge():
    require_module("faster_whisper")
    from stream_server.intelligibility import WhisperJudge

    return WhisperJudge(beam_size=1, cpu_threads=1)


def word_error_rate(text: str, audio: np.ndarray, rate: int) -> float:
    """Whisper's word error rate on `audio` against `text` (0.0: every word heard)."""
    score = _judge().score([(text, audio, rate)])[0]
    return score.wer
