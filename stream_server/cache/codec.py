"""The stored form of one sentence: a msgpack header with its PCM, authenticated by a keyed MAC.

Layout 2: `SSC2` + msgpack {spoken, material, rate, hop, timings, pcm} + a 32-byte keyed BLAKE2b
tag of everything before it. The key comes from the cache secret (cache.secret or
STREAM_SERVER_CACHE_SECRET; servers that share a Redis share it). A shared Redis is not trusted:
anyone who can write to it could otherwise make every server play their audio, or plant an entry
whose word timings stall a session. So the tag is checked before a byte of the entry is parsed,
and then every field is validated against the voice and the limits before the entry is used.

PCM is float32 little-endian, exactly what the engine produced: a replay then goes through the
session's usual resampler/encoder and gives the same bytes as a fresh synthesis in every output
format (int16 would alter pcm_f32le and resampled output; float16 errs by ~5e-4, half the
tests' tolerance for chunk joins). The cost is 88 KB per second of 22.05 kHz audio.

The spoken form and key material are in the entry too (compared on read: collision safety).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, field

import msgpack
import numpy as np

from ..config import CacheSection

LAYOUT = 2  # 1 had a CRC and no MAC; the layout is part of every key (keys.py), so layouts never meet
MAGIC = b"SSC%d" % LAYOUT  # stream_server sentence cache
TAG_BYTES = 32
_DTYPE = np.dtype("<f4")
_HEADER_SLACK = 64 << 10  # msgpack framing, spoken form, material and timings beside the PCM
_FIELDS = {"spoken", "material", "rate", "hop", "timings", "pcm"}


class CorruptEntry(ValueError):
    """The stored bytes are not a whole, valid entry (truncated, garbled, other layout, or a
    field that does not hold up: sizes, rate, timings)."""


class UnauthenticatedEntry(CorruptEntry):
    """The entry's tag does not match: written without our secret (or damaged)."""


_CACHE = CacheSection()  # the config's cache defaults


@dataclass(frozen=True)
class EntryLimits:
    """What a valid entry may hold, whoever wrote it."""

    max_seconds: float = _CACHE.max_entry_seconds  # audio per sentence
    max_words: int = _CACHE.max_entry_words  # word timings per sentence


@dataclass(frozen=True)
class EntryShape:
    """What the voice says its entries look like: its native rate and frame length."""

    sample_rate: int
    hop_length: int


@dataclass(frozen=True)
class CachedSentence:
    spoken: str
    material: str
    sample_rate: int  # the voice's native rate
    hop_length: int  # samples per latent frame: the engine's chunks are whole frames
    pcm: np.ndarray  # float32 mono at sample_rate
    # [(start_frame, end_frame)] per spoken word group, if the voice has them (the session maps
    # them onto the words of its own text; see server/word_times.py)
    word_timings: list = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.pcm) // self.hop_length


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_entry(entry: CachedSentence, limits: EntryLimits, shape: EntryShape | None = None) -> None:
    """Raise CorruptEntry unless the entry is one the session can replay as it is: whole frames
    at the voice's rate, finite samples, within the limits, and word timings that are pairs of
    frame numbers, in order, inside the audio."""
    rate, hop = entry.sample_rate, entry.hop_length
    if not (_is_int(rate) and _is_int(hop) and rate > 0 and hop > 0):
        raise CorruptEntry("rate and hop must be positive integers")
    if shape is not None and (rate, hop) != (shape.sample_rate, shape.hop_length):
        raise CorruptEntry(f"rate/hop {rate}/{hop} are not the voice's {shape.sample_rate}/{shape.hop_length}")
    samples = len(entry.pcm)
    if samples % hop:
        raise CorruptEntry("PCM is not whole frames")
    if samples > limits.max_seconds * rate:
        raise CorruptEntry(f"{samples / rate:.1f} s of audio exceeds the limit of {limits.max_seconds:g} s")
    if not np.isfinite(entry.pcm).all():
        raise CorruptEntry("PCM holds NaN or infinity")
    timings = entry.word_timings
    if len(timings) > limits.max_words:
        raise CorruptEntry(f"{len(timings)} word timings exceed the limit of {limits.max_words}")
    frames, previous_end = samples // hop, 0
    for pair in timings:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(_is_int(v) for v in pair)):
            raise CorruptEntry("a word timing is not a pair of frame numbers")
        start, end = pair
        if not previous_end <= start <= end <= frames:
            raise CorruptEntry("word timings are out of order or outside the audio")
        previous_end = end


class EntryCodec:
    """Encodes and verifies entries under one secret."""

    def __init__(self, secret: bytes, limits: EntryLimits = EntryLimits()) -> None:
        if not secret:
            raise ValueError("the cache secret must not be empty")
        # BLAKE2b takes keys of at most 64 bytes; a secret of any length is hashed to one.
        self._key = hashlib.sha256(b"stream_server cache secret\0" + secret).digest()
        self.limits = limits

    @classmethod
    def with_random_secret(cls, limits: EntryLimits = EntryLimits()) -> EntryCodec:
        """Entries only this object can read (no secret configured: nothing is shared)."""
        return cls(secrets.token_bytes(32), limits)

    def _tag(self, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=self._key, digest_size=TAG_BYTES, person=b"ssc-entry-v2").digest()

    def max_blob_bytes(self, sample_rate: int) -> int:
        """The largest entry a voice at this rate can have: bigger ones are not even read."""
        samples = math.ceil(self.limits.max_seconds * sample_rate)
        return len(MAGIC) + samples * _DTYPE.itemsize + _HEADER_SLACK + TAG_BYTES

    def check(self, entry: CachedSentence, shape: EntryShape | None = None) -> None:
        check_entry(entry, self.limits, shape)

    def encode(self, entry: CachedSentence) -> bytes:
        pcm = np.ascontiguousarray(entry.pcm, dtype=_DTYPE).tobytes()
        header = {
            "spoken": entry.spoken,
            "material": entry.material,
            "rate": int(entry.sample_rate),
            "hop": int(entry.hop_length),
            "timings": [[int(a), int(b)] for a, b in entry.word_timings],
            "pcm": pcm,
        }
        body = MAGIC + msgpack.packb(header, use_bin_type=True)
        return body + self._tag(body)

    def decode(self, blob: bytes, shape: EntryShape | None = None) -> CachedSentence:
        """Verify and parse a stored entry, or raise CorruptEntry (UnauthenticatedEntry when its
        tag is wrong). Nothing of an entry is parsed before its tag is checked."""
        if len(blob) < len(MAGIC) + TAG_BYTES or not blob.startswith(MAGIC):
            raise CorruptEntry("not a layout-2 entry")
        body, tag = blob[:-TAG_BYTES], blob[-TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(body)):
            raise UnauthenticatedEntry("tag mismatch: written without this server's cache secret, or damaged")
        try:
            h = msgpack.unpackb(body[len(MAGIC):], raw=False)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise CorruptEntry(f"unreadable header: {exc}") from None
        if not isinstance(h, dict) or set(h) != _FIELDS:
            raise CorruptEntry("wrong header fields")
        pcm, timings = h["pcm"], h["timings"]
        if not (isinstance(pcm, bytes) and isinstance(h["spoken"], str) and isinstance(h["material"], str)
                and isinstance(timings, list)):
            raise CorruptEntry("wrong field types")
        if len(pcm) % _DTYPE.itemsize:
            raise CorruptEntry("PCM is not whole samples")
        audio = np.frombuffer(pcm, dtype=_DTYPE).astype(np.float32)
        entry = CachedSentence(
            h["spoken"], h["material"], h["rate"], h["hop"], audio,
            [tuple(t) if isinstance(t, list) else t for t in timings],
        )
        check_entry(entry, self.limits, shape)
        return entry
