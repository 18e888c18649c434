"""Compressed output encodings of s16le mono PCM: mp3 as it streams, flac, opus and vorbis whole.

mp3 goes through LAME (`lameenc`) frame by frame, so an HTTP response can start before the last
sentence is synthesized; flac and ogg/opus are written by libsndfile (`soundfile`) once the whole
audio is there (their containers want it).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import lameenc
import numpy as np
import soundfile as sf

_CONTAINERS = {"flac": ("FLAC", "PCM_16"), "opus": ("OGG", "OPUS"), "ogg": ("OGG", "VORBIS")}
WHOLE_FORMATS = ("flac", "opus")  # what the OpenAI endpoint offers whole
MP3_KBPS = 64  # mono speech


def mp3_encoder(sample_rate: int, kbps: int = MP3_KBPS) -> lameenc.Encoder:
    """A LAME encoder of s16le mono at `sample_rate` (also the mp3's rate: the caller resamples)."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)  # else LAME picks its own for low bit rates (44100 at 32 kbps -> 22050)
    encoder.set_channels(1)
    encoder.set_quality(2)  # 2 = high quality, 7 = fast
    return encoder


async def mp3_stream(
    pcm_chunks: AsyncIterator[bytes], sample_rate: int, kbps: int = MP3_KBPS
) -> AsyncIterator[bytes]:
    """s16le mono chunks -> mp3 frames as soon as LAME has them, then the final frames."""
    mp3 = Mp3Chunks(sample_rate, kbps)
    async for pcm in pcm_chunks:
        frames = mp3.encode(pcm)
        if frames:
            yield frames
    yield mp3.flush()


def encode_whole(pcm: bytes, fmt: str, sample_rate: int) -> bytes:
    """s16le mono audio -> a whole flac, ogg/opus or ogg/vorbis ("ogg") file."""
    container, subtype = _CONTAINERS[fmt]
    out = io.BytesIO()
    sf.write(out, np.frombuffer(pcm, dtype="<i2"), sample_rate, format=container, subtype=subtype)
    return out.getvalue()


class Mp3Chunks:
    """An mp3 stream encoded piece by piece: `encode` returns the frames LAME has ready (maybe none
    yet: it holds back up to a frame and its look-ahead), `flush` the rest; the next `encode` then
    starts a new stream. The mp3 keeps the input's rate (LAME would lower it at low bit rates)."""

    def __init__(self, sample_rate: int, kbps: int) -> None:
        self.sample_rate = sample_rate
        self.kbps = kbps
        self._lame: lameenc.Encoder | None = None

    def encode(self, pcm: bytes) -> bytes:
        if self._lame is None:
            self._lame = mp3_encoder(self.sample_rate, self.kbps)
        return bytes(self._lame.encode(pcm)) if pcm else b""

    def flush(self) -> bytes:
        """The stream's last frames ("" if nothing was encoded since the last flush)."""
        lame, self._lame = self._lame, None
        return b"" if lame is None else bytes(lame.flush())
