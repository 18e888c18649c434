"""How far a session's synthesis runs ahead of its client, in seconds of audio (backpressure).

A session hands sentences to the engine through a SubmitGate: a sentence is submitted only while
the audio the session holds for its client (synthesized and not yet sent) plus the audio still
expected from the sentences being synthesized stays under `session.max_audio_ahead_seconds`.
A client that reads keeps that near zero, so it never waits here; one that stops reading stops the
engine's work for it within about that much audio (plus the one sentence that crossed the line,
itself bounded by `session.hard_sentence_chars`). Sentences not yet submitted stay text, which
`session.max_pending_chars` bounds.

Pure bookkeeping: no asyncio, no engine (tests/test_audio_ahead.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

# Speech at speed 1 runs about 12-15 characters a second; a sentence's audio is estimated on the
# long side until it arrives (a low estimate would let more than the bound be synthesized).
SECONDS_PER_CHAR = 0.08


@dataclass
class Share:
    """One sentence's part of the session's audio ahead."""

    chars: int
    length_scale: float
    expected: float  # seconds still to arrive, by estimate (0 once its last chunk came)
    held: float = 0.0  # seconds arrived and not yet sent
    arrived: float = 0.0  # seconds arrived in all
    dropped: bool = False


@dataclass
class AudioAhead:
    """The session's ledger: `held` is audio in memory for the client, `expected` what the
    engine is still to deliver of the submitted sentences (estimated)."""

    limit: float  # seconds; <= 0: no bound
    held: float = 0.0
    expected: float = 0.0
    seconds_per_char: float = SECONDS_PER_CHAR  # at length_scale 1; learned from finished sentences
    _chars_done: int = 0
    _seconds_done: float = 0.0

    def ahead(self) -> float:
        return max(0.0, self.held + self.expected)

    def has_room(self) -> bool:
        return self.limit <= 0 or self.ahead() < self.limit

    def open(self, chars: int, length_scale: float = 1.0) -> Share:
        """A sentence about to be submitted."""
        share = Share(chars, length_scale, chars * self.seconds_per_char * length_scale)
        self.expected += share.expected
        return share

    def arrived(self, share: Share | None, seconds: float, last: bool) -> None:
        """Audio of the sentence came from the engine (or the cache)."""
        if share is None or share.dropped:
            return
        share.held += seconds
        share.arrived += seconds
        self.held += seconds
        used = share.expected if last else min(seconds, share.expected)
        share.expected -= used
        self.expected -= used
        if last:
            self._learn(share)

    def sent(self, share: Share | None, seconds: float) -> None:
        """Audio of the sentence went to the client."""
        if share is None or share.dropped:
            return
        seconds = min(seconds, share.held)
        share.held -= seconds
        self.held -= seconds

    def drop(self, share: Share | None) -> None:
        """The sentence is through (sent, failed or cancelled): nothing of it counts any more."""
        if share is None or share.dropped:
            return
        share.dropped = True
        self.held -= share.held
        self.expected -= share.expected
        share.held = share.expected = 0.0

    def _learn(self, share: Share) -> None:
        """A slower voice than the estimate: later sentences are estimated at its pace (never
        below the default, so a fast voice is not overfed)."""
        if share.chars and share.length_scale > 0:
            self._chars_done += share.chars
            self._seconds_done += share.arrived / share.length_scale
            observed = self._seconds_done / self._chars_done
            self.seconds_per_char = max(SECONDS_PER_CHAR, observed)


T = TypeVar("T")


@dataclass
class SubmitGate(Generic[T]):
    """Sentences waiting, in order, for room ahead of the client. `submit` hands one to the
    engine (and opens its Share); `skip` says whether a waiting one was cancelled meanwhile."""

    ahead: AudioAhead
    submit: Callable[[T], None]
    skip: Callable[[T], bool]
    waiting: deque[T] = field(default_factory=deque)
    closed: bool = False

    def offer(self, item: T) -> None:
        if not self.closed:
            self.waiting.append(item)
            self.feed()

    def feed(self) -> None:
        """Submit waiting sentences while there is room (the first always goes when nothing is
        ahead, so a sentence longer than the bound still gets synthesized)."""
        while self.waiting and not self.closed and self.ahead.has_room():
            item = self.waiting.popleft()
            if not self.skip(item):
                self.submit(item)

    def close(self) -> None:
        """Nothing more is submitted (the session is ending)."""
        self.closed = True
        self.waiting.clear()
