"""Small pieces the compatibility adapters (OpenAI, Wyoming, ElevenLabs) share."""

from __future__ import annotations

import asyncio
import logging
import struct

from .events import SessionEvent
from .services import Services

log = logging.getLogger(__name__)


def resolve_voice(services: Services, name: str | None) -> str:
    """Another protocol's voice name -> ours (config `voice_aliases`); None -> the default voice.
    An unknown name is passed through, so the session rejects it with `unknown_voice`."""
    if not name:
        return services.config.default_voice
    return services.config.voice_aliases.get(name, name)


class EventQueue:
    """A session's `emit` that queues the events for an adapter to consume in its own task."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SessionEvent] = asyncio.Queue()

    async def __call__(self, event: SessionEvent) -> None:
        self.queue.put_nowait(event)

    async def get(self) -> SessionEvent:
        return await self.queue.get()


def note_error(services: Services, protocol: str, session_id: str, code: str, message: str) -> None:
    """Count and log an error reported to a client (same log line as the native protocol)."""
    services.metrics.errors.labels(code).inc()
    log.warning(
        "event=error protocol=%s session_id=%s code=%s message=%r", protocol, session_id, code, message
    )


# Streamed WAV: the sizes are unknown when the header goes out, so both RIFF and data sizes are
# 0xFFFFFFFF ("read to the end of the stream"), as ffmpeg and OpenAI do; libsndfile, Python's
# `wave` and browsers accept it.
UNKNOWN_SIZE = 0xFFFFFFFF


def wav_header(sample_rate: int, data_bytes: int | None = None, channels: int = 1, width: int = 2) -> bytes:
    riff = UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    data = UNKNOWN_SIZE if data_bytes is None else data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVE"
        + b"fmt " + struct.pack(
            "<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * channels * width,
            channels * width, 8 * width,
        )
        + b"data" + struct.pack("<I", data)
    )
