"""The stored form of one sentence: a small msgpack header plus its PCM at the voice's rate.

PCM is float32 little-endian, exactly what the engine produced: a replay then goes through the
session's usual resampler/encoder and gives the same bytes as a fresh synthesis in every output
format (int16 would alter pcm_f32le and resampled output; float16 errs by ~5e-4, half the
tests' tolerance for chunk joins). The cost is 88 KB per second of 22.05 kHz audio.

Everything needed to check and replay the entry is in the header: the spoken form and key
material (compared on read: collision safety), native rate and hop length (the chunk framing of
a replay), sample count and a CRC32 of the PCM (a truncated or corrupt entry is detected).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import msgpack
import numpy as np

MAGIC = b"SSC1"  # stream_server sentence cache, layout 1
_DTYPE = np.dtype("<f4")


class CorruptEntry(ValueError):
    """The stored bytes are not a whole, valid entry (truncated, garbled, other layout)."""


@dataclass(frozen=True)
class CachedSentence:
    spoken: str
    material: str
    sample_rate: int  # the voice's native rate
    hop_length: int  # samples per latent frame: the engine's chunks are whole frames
    pcm: np.ndarray  # float32 mono at sample_rate
    # [(start_frame, end_frame)] per spoken word group, if the voice has them (the session maps
    # them onto the words of its own text; see server/session.py word_timestamps)
    word_timings: list = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.pcm) // self.hop_length


def encode_entry(entry: CachedSentence) -> bytes:
    pcm = np.ascontiguousarray(entry.pcm, dtype=_DTYPE).tobytes()
    header = {
        "spoken": entry.spoken,
        "material": entry.material,
        "rate": int(entry.sample_rate),
        "hop": int(entry.hop_length),
        "samples": len(pcm) // _DTYPE.itemsize,
        "crc": zlib.crc32(pcm),
        "timings": [list(t) for t in entry.word_timings],
        "pcm": pcm,
    }
    return MAGIC + msgpack.packb(header, use_bin_type=True)


def decode_entry(blob: bytes) -> CachedSentence:
    """Parse and verify a stored entry, or raise CorruptEntry."""
    if not blob.startswith(MAGIC):
        raise CorruptEntry("bad magic")
    try:
        h = msgpack.unpackb(blob[len(MAGIC):], raw=False)
        pcm, samples, hop = h["pcm"], int(h["samples"]), int(h["hop"])
        spoken, material, rate = h["spoken"], h["material"], int(h["rate"])
        timings, crc = list(h["timings"]), int(h["crc"])
    except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
        raise CorruptEntry(f"unreadable header: {exc}") from None
    if not isinstance(pcm, bytes) or not isinstance(spoken, str) or not isinstance(material, str):
        raise CorruptEntry("wrong field types")
    if len(pcm) != samples * _DTYPE.itemsize or zlib.crc32(pcm) != crc:
        raise CorruptEntry("PCM length or checksum mismatch")
    if hop <= 0 or rate <= 0 or samples % hop:
        raise CorruptEntry("PCM is not whole frames")
    audio = np.frombuffer(pcm, dtype=_DTYPE).astype(np.float32)
    return CachedSentence(spoken, material, rate, hop, audio, [tuple(t) for t in timings])
