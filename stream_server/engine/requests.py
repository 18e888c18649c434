"""What travels into and out of the engine thread: sentence requests, their life states and events.

Nothing here imports torch: the asyncio side builds requests and consumes events, the engine
thread owns the tensors.
"""

from __future__ import annotations

import enum
import itertools
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

_request_ids = itertools.count(1)


def next_request_id() -> int:
    return next(_request_ids)


class SentenceStatus(enum.IntEnum):
    """Ordered life of a sentence inside the engine; everything >= FINISHED is terminal."""

    WAITING = 0  # queued, no slot yet
    PREFILLING = 1  # admitted to a slot this iteration, prefill not run yet
    DECODING = 2  # frames still being generated
    VOCODING = 3  # all frames generated, audio chunks still pending
    FINISHED = 4
    CANCELLED = 5
    FAILED = 6

    def is_done(self) -> bool:
        return self >= SentenceStatus.FINISHED


@dataclass(frozen=True)
class SynthesisOptions:
    """Every parameter that changes the audio of a sentence (besides voice and text)."""

    noise_scale: float = 0.667
    length_scale: float = 1.0
    noise_w: float = 0.8
    seed: int = 0


@dataclass
class AudioEvent:
    """One chunk of float32 PCM at the voice's native rate; `last` closes the sentence.
    `cached`: replayed from the sentence cache rather than synthesized."""

    request_id: int
    index: int
    pcm: np.ndarray
    last: bool
    cached: bool = False


@dataclass
class TimingEvent:
    """When each spoken word of a sentence is said: (start, end) latent frame per word group
    (the voice's phoneme durations, words split at its space phoneme). Sent once per sentence,
    before its first AudioEvent, by voices that know their durations. `frame_seconds` is
    hop_length / native rate; `num_frames` the sentence's total frames."""

    request_id: int
    word_frames: list[tuple[int, int]]
    frame_seconds: float
    num_frames: int
    cached: bool = False
    last = False  # never closes a sentence (consumers that only check `.last` keep working)


@dataclass
class ErrorEvent:
    request_id: int
    code: str
    message: str


EngineEvent = AudioEvent | TimingEvent | ErrorEvent
Deliver = Callable[[EngineEvent], None]


@dataclass
class SentenceRequest:
    """A sentence handed to the engine. `deliver` must be thread-safe (the engine calls it)."""

    session_id: str
    context_id: str
    text: str
    voice: str
    options: SynthesisOptions
    # Position of this sentence within its session: 0 = the session's first sentence,
    # which goes ahead of other sessions' later sentences.
    session_ordinal: int
    deliver: Deliver
    request_id: int = field(default_factory=next_request_id)
    created_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class CancelRequest:
    """Cancel a session's sentences: one context, or all of them when context_id is None."""

    session_id: str
    context_id: str | None = None
