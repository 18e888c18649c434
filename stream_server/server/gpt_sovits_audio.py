"""api_v2's audio out of a session's float events: peaks scaled down as upstream does (a unit
whose peak exceeds 1.0 is divided by it, never clipped), then s16le and `fragment_interval` of
silence after each piece.

The unit is upstream's: a whole piece when api_v2 answers at once or with streaming_mode 1 (it
post-processes each fragment whole), one engine chunk with streaming modes 2 and 3 (it
post-processes each chunk)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import numpy as np

from ..audio.formats import encode_pcm
from .compat import EventQueue
from .events import Audio, Done, Error, SentenceEnd


def scaled(audio: np.ndarray) -> np.ndarray:
    """Upstream's guard against 16-bit overflow: divide by the peak when it is over 1.0."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio / peak if peak > 1.0 else audio


def to_s16(audio: np.ndarray) -> bytes:
    return encode_pcm(scaled(audio), "pcm_s16le")


async def unit_pcm(
    events: EventQueue, stack: contextlib.AsyncExitStack, gap: bytes, whole_pieces: bool
) -> AsyncGenerator[bytes, None]:
    """s16le units (a piece or a chunk, then `gap` after each piece) from a pcm_f32le session; a
    failed sentence ends it with RuntimeError. Closing the iterator closes the session."""
    async with stack:
        piece: list[np.ndarray] = []
        while True:
            event = await events.get()
            if isinstance(event, Audio):
                chunk = np.frombuffer(event.pcm, dtype="<f4")
                if whole_pieces:
                    piece.append(chunk)
                elif chunk.size:
                    yield to_s16(chunk)
            elif isinstance(event, SentenceEnd):
                if piece:
                    yield to_s16(np.concatenate(piece))
                    piece = []
                if gap:
                    yield gap
            elif isinstance(event, Error):
                raise RuntimeError(f"{event.code}: {event.message}")
            elif isinstance(event, Done):
                return
