"""Small pieces the compatibility adapters (OpenAI, Wyoming, ElevenLabs, Deepgram) share."""

from __future__ import annotations

import asyncio

from ..config import SPEAKER_SEPARATOR
from .events import SessionEvent
from .services import Services


def resolve_voice(services: Services, name: str | None) -> str:
    """Another protocol's voice name -> ours (config `voice_aliases`); None -> the default voice.
    An unknown name is passed through, so the session rejects it with `unknown_voice`."""
    if not name:
        return services.config.default_voice
    return services.config.voice_aliases.get(name, name)


def resolve_voice_or_default(services: Services, name: str | None) -> str:
    """Like resolve_voice, but a name that is neither an alias nor a voice means the default voice:
    for protocols whose clients always send the provider's own model names (Deepgram's `model`)."""
    voice = resolve_voice(services, name)
    base = voice.partition(SPEAKER_SEPARATOR)[0]  # "<voice>#<speaker>" is that voice
    return voice if base in services.voice_rates else services.config.default_voice


class EventQueue:
    """A session's `emit` that queues the events for an adapter to consume in its own task.

    Bounded: when the consumer is slow (its client does not read), the session's pump waits as it
    would on a socket, so audio piles up no further than the session's own backlog limit allows
    (session.max_pending_chars) instead of in here. `force` never waits (a shutdown notice)."""

    def __init__(self, maxsize: int = 64) -> None:
        self.queue: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self.maxsize = maxsize
        self._room = asyncio.Event()
        self._room.set()

    async def __call__(self, event: SessionEvent) -> None:
        while self.queue.qsize() >= self.maxsize:
            self._room.clear()
            await self._room.wait()
        self.queue.put_nowait(event)

    def force(self, event: SessionEvent) -> None:
        self.queue.put_nowait(event)

    async def get(self) -> SessionEvent:
        event = await self.queue.get()
        if self.queue.qsize() < self.maxsize:
            self._room.set()
        return event
