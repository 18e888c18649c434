"""api_v2's audio out of a session's float events: peaks scaled down as upstream does (a unit
whose peak exceeds 1.0 is divided by it, never clipped), then s16le and `fragment_interval` of
silence after each piece; packed as api_v2 packs it (wav, raw, ogg, aac: a streamed ogg or aac is
one file per unit, as upstream sends them).

The unit is upstream's: a whole piece when api_v2 answers at once or with streaming_mode 1 (it
post-processes each fragment whole), one engine chunk with streaming modes 2 and 3 (it
post-processes each chunk)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncGenerator, AsyncIterator

import av
import numpy as np

from ..audio.encoders import encode_whole
from ..audio.formats import encode_pcm, wav_header
from .compat import EventQueue
from .events import Audio, Done, Error, SentenceEnd


def scaled(audio: np.ndarray) -> np.ndarray:
    """Upstream's guard against 16-bit overflow: divide by the peak when it is over 1.0."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio / peak if peak > 1.0 else audio


def to_s16(audio: np.ndarray) -> bytes:
    return encode_pcm(scaled(audio), "pcm_s16le")


async def unit_pcm(
    events: EventQueue, stack: contextlib.AsyncExitStack, gap: bytes, whole_pieces: bool, piece_ends: bool = False
) -> AsyncGenerator[bytes, None]:
    """s16le units (a piece or a chunk, then `gap` after each piece) from a pcm_f32le session; a
    failed sentence ends it with RuntimeError. Closing the iterator closes the session.
    `piece_ends`: exactly one unit per piece (whole pieces, empty ones too) and no gap."""
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
                if piece or piece_ends:
                    yield to_s16(np.concatenate(piece)) if piece else b""
                    piece = []
                if gap:
                    yield gap
            elif isinstance(event, Error):
                raise RuntimeError(f"{event.code}: {event.message}")
            elif isinstance(event, Done):
                return


async def reordered_answer(events: EventQueue, stack: contextlib.AsyncExitStack, gap: bytes, order: list[int]) -> bytes:
    """streaming_mode 0's whole s16le answer when its pieces were spoken in `order` (sentence k is
    piece order[k] of the text: upstream's split_bucket order), put back in the text's order."""
    pieces: dict[int, bytes] = {}
    async for piece in unit_pcm(events, stack, b"", whole_pieces=True, piece_ends=True):
        pieces[order[len(pieces)]] = piece
    return b"".join(pieces[i] + gap for i in sorted(pieces))


AAC_BIT_RATE = 192_000  # upstream's ffmpeg command line (-b:a 192k, ADTS)


def encode_aac(pcm: bytes, rate: int) -> bytes:
    """s16le mono as an AAC ADTS stream (upstream pipes it through ffmpeg; here PyAV's encoder)."""
    out = io.BytesIO()
    with av.open(out, "w", format="adts") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        stream.bit_rate = AAC_BIT_RATE
        frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, "<i2").reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def pack(pcm: bytes, rate: int, media_type: str) -> bytes:
    """One file of `media_type` (raw: the samples as they are)."""
    if media_type == "wav":
        return wav_header(rate, len(pcm)) + pcm
    if media_type == "ogg":
        return encode_whole(pcm, "ogg", rate)
    if media_type == "aac":
        return encode_aac(pcm, rate)
    return pcm


async def packed_stream(units: AsyncGenerator[bytes, None], rate: int, media_type: str) -> AsyncIterator[bytes]:
    """A streamed answer: a wav header then raw samples, raw samples, or one file per unit."""
    try:
        if media_type == "wav":
            yield wav_header(rate)
        async for unit in units:
            yield unit if media_type in ("wav", "raw") else await asyncio.to_thread(pack, unit, rate, media_type)
    finally:
        await units.aclose()  # closes the session now, also when the client stops reading
