"""Output audio: sample-rate conversion (soxr, streaming per sentence) and PCM encodings."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import soxr

SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
FORMATS = ("pcm_s16le", "pcm_f32le", "ulaw")
ULAW_SAMPLE_RATE = 8000  # G.711 mu-law is telephony audio: 8 kHz only


@dataclass(frozen=True)
class OutputSpec:
    """How a session wants its audio (rate and format): part of the sentence cache's key."""

    sample_rate: int
    format: str


class AudioFormatError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_output(sample_rate: int, fmt: str) -> None:
    if sample_rate not in SAMPLE_RATES:
        raise AudioFormatError(
            "unsupported_sample_rate",
            f"sample_rate {repr(sample_rate)[:64]} is not supported; use one of {list(SAMPLE_RATES)}",
        )
    if fmt not in FORMATS:
        raise AudioFormatError(
            "unsupported_format", f"format {repr(fmt)[:64]} is not supported; use one of {list(FORMATS)}"
        )
    if fmt == "ulaw" and sample_rate != ULAW_SAMPLE_RATE:
        raise AudioFormatError(
            "unsupported_format",
            f"format 'ulaw' (G.711 mu-law) needs sample_rate={ULAW_SAMPLE_RATE}; got {sample_rate}",
        )


def encode_pcm(audio: np.ndarray, fmt: str) -> bytes:
    """float32 mono in [-1, 1] -> bytes in the requested encoding (little-endian PCM, or
    G.711 mu-law: one byte per sample, from the s16 samples)."""
    if fmt == "pcm_f32le":
        return np.asarray(audio, dtype="<f4").tobytes()
    clipped = np.clip(audio, -1.0, 1.0) * 32767.0
    pcm16 = np.round(clipped).astype("<i2").tobytes()
    return mulaw_encode(pcm16) if fmt == "ulaw" else pcm16


def bytes_per_sample(fmt: str) -> int:
    return {"pcm_f32le": 4, "ulaw": 1}.get(fmt, 2)


_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def mulaw_encode(pcm16: bytes) -> bytes:
    """s16le -> G.711 mu-law bytes (the classic 14-bit CCITT encoder, as audioop.lin2ulaw).
    Shared by the native protocol (`format=ulaw`) and the ElevenLabs adapter (`ulaw_8000`)."""
    x = np.frombuffer(pcm16, dtype="<i2").astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(x), 8159) + 33
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, value)
    ulaw = np.where(segment >= 8, 0x7F, (segment << 4) | ((value >> (segment + 1)) & 0x0F))
    return ((ulaw ^ mask) & 0xFF).astype(np.uint8).tobytes()


class SentenceEncoder:
    """Converts one sentence's chunks, in order, to the session's rate and encoding.

    A streaming resampler per sentence, so the chunks together equal resampling the whole
    sentence at once (soxr keeps state between calls; `last` drains its delay line).
    """

    def __init__(self, src_rate: int, dst_rate: int, fmt: str) -> None:
        self.fmt = fmt
        self._stream = (
            None
            if src_rate == dst_rate
            else soxr.ResampleStream(src_rate, dst_rate, 1, dtype="float32", quality="HQ")
        )
        self.samples = 0

    def encode(self, pcm: np.ndarray, last: bool) -> bytes:
        audio = np.asarray(pcm, dtype=np.float32)
        if self._stream is not None:
            audio = self._stream.resample_chunk(audio, last=last)
        self.samples += len(audio)
        return encode_pcm(audio, self.fmt)


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Whole-signal resampling with the same filter as SentenceEncoder (for offline reference)."""
    if src_rate == dst_rate:
        return np.asarray(audio, dtype=np.float32)
    return soxr.resample(np.asarray(audio, dtype=np.float32), src_rate, dst_rate, quality="HQ")


# Streamed WAV: the sizes are unknown when the header goes out, so both RIFF and data sizes are
# 0xFFFFFFFF ("read to the end of the stream"), as ffmpeg and OpenAI do; libsndfile, Python's
# `wave` and browsers accept it.
UNKNOWN_SIZE = 0xFFFFFFFF


WAV_PCM, WAV_MULAW = 1, 7  # the fmt chunk's format tags


def wav_header(
    sample_rate: int, data_bytes: int | None = None, channels: int = 1, width: int = 2, tag: int = WAV_PCM
) -> bytes:
    riff = UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    data = UNKNOWN_SIZE if data_bytes is None else data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVE"
        + b"fmt " + struct.pack(
            "<IHHIIHH", 16, tag, channels, sample_rate, sample_rate * channels * width,
            channels * width, 8 * width,
        )
        + b"data" + struct.pack("<I", data)
    )
