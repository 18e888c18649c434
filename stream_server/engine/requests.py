"""What travels into and out of the engine thread: sentence requests, their life states and events.

Nothing here imports torch: the asyncio side builds requests and consumes events, the engine
thread owns the tensors. Requests are plain data (no callbacks): the engine returns each step's
events as one batch, and the loop side (engine/client.py) routes them by request id.
"""

from __future__ import annotations

import enum
import itertools
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..config import SynthesisSection

_request_ids = itertools.count(1)


def next_request_id() -> int:
    return next(_request_ids)


class SentenceStatus(enum.IntEnum):
    """Ordered life of a sentence inside the engine; everything >= FINISHED is terminal."""

    WAITING = 0  # queued, no slot yet
    PREFILLING = 1  # given a slot this step, prefill not run yet
    DECODING = 2  # frames still being generated (total maybe unknown: EOS decides)
    VOCODING = 3  # all frames generated, audio chunks still pending
    FINISHED = 4
    CANCELLED = 5
    FAILED = 6

    def is_done(self) -> bool:
        return self >= SentenceStatus.FINISHED


_SYNTHESIS = SynthesisSection()  # the config's synthesis defaults are the options' own

# SynthesisOptions.extra: a multi-speaker voice's speaker (a name from its speaker_id_map)
SPEAKER_OPTION = "speaker"


@dataclass(frozen=True)
class SynthesisOptions:
    """Every parameter that changes the audio of a sentence (besides voice and text).

    The sampling fields are for models that sample their decode steps; None means the model's own
    default, and models that do not sample ignore them. `extra` holds arguments of one model
    family as (name, value) pairs, e.g. a GPT-SoVITS reference clip and text language. Every field
    is part of the sentence cache's key.
    """

    noise_scale: float = _SYNTHESIS.noise_scale
    length_scale: float = _SYNTHESIS.length_scale  # > 1 is slower speech (speed = 1 / length_scale)
    noise_w: float = _SYNTHESIS.noise_w
    seed: int = 0  # all randomness of a sentence (noise, sampling) comes from this
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    extra: tuple[tuple[str, str], ...] = ()
    # (stream, seed): the session's sentences with this stream draw all their randomness, one after
    # another in session order, from one generator seeded with `seed` (GPT-SoVITS api_v2's request
    # seed, as upstream seeds torch's global one); each is vocoded whole once its frames are done.
    # None: each sentence has its own generators, seeded from `seed` above.
    shared_rng: tuple[str, int] | None = None

    def extra_value(self, name: str, default: str | None = None) -> str | None:
        return dict(self.extra).get(name, default)


@dataclass(frozen=True)
class SentenceRequest:
    """A sentence handed to the engine. `spoken` is its spoken form (text/spoken_form.py),
    computed once by the session: the engine speaks it and the cache keys on it."""

    session_id: str
    context_id: str
    spoken: str
    voice: str
    options: SynthesisOptions
    # Position of this sentence within its session: 0 = the session's first sentence,
    # which goes ahead of other sessions' later sentences.
    session_ordinal: int
    request_id: int = field(default_factory=next_request_id)
    created_at: float = field(default_factory=time.monotonic)

    def speaking_for(self, owner: SentenceRequest) -> SentenceRequest:
        """This sentence (same id, text, voice, options) on behalf of `owner`'s session."""
        return replace(
            self, session_id=owner.session_id, context_id=owner.context_id, session_ordinal=owner.session_ordinal
        )


@dataclass(frozen=True)
class CancelRequest:
    """Cancel a session's sentences (one context, or all of them when context_id is None), or one
    sentence by its request id."""

    session_id: str | None = None
    context_id: str | None = None
    request_id: int | None = None

    def matches(self, request: SentenceRequest) -> bool:
        if self.request_id is not None:
            return request.request_id == self.request_id
        return request.session_id == self.session_id and self.context_id in (None, request.context_id)


@dataclass(frozen=True)
class Reassign:
    """A sentence synthesized for several sessions at once (the sentence cache shares it) now
    serves another session: the scheduler's priorities follow `owner`'s session and position."""

    request_id: int
    owner: SentenceRequest


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
    """The sentence failed; it closes the sentence like a `last` chunk."""

    request_id: int
    code: str
    message: str
    last = True


EngineEvent = AudioEvent | TimingEvent | ErrorEvent
