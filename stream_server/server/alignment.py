"""ElevenLabs-style character alignment, shared by both ElevenLabs adapters:
`{"chars", "charStartTimesMs", "charDurationsMs"}`, integer ms from the start of the message's audio.

From the engine's word timings (the session's Words event) when there are any: a word's characters
spread evenly over that word's spoken span, the characters between words (spaces, punctuation) over
the pause between them. Each character lasts until the next one starts and the last one until the
audio ends, so a client that advances its clock by each message's last start + duration stays on
the audio (Pipecat does). Without word timings the characters spread evenly over the audio.

A sentence goes out in several messages, one per engine chunk (ChunkAligner): each carries the
characters that start in its audio, timed from its start, as ElevenLabs' do.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from ..text.words import word_char_spans  # the words the session times (the same tokenizer)
from .word_times import WordTime


def even_alignment(text: str, samples: int, rate: int) -> dict[str, Any]:
    """The sentence's characters spread evenly over its audio, in ms from the message's start."""
    chars = list(text)
    total_ms = 1000.0 * samples / rate
    edges = [round(i * total_ms / max(len(chars), 1)) for i in range(len(chars) + 1)]
    return _alignment(chars, edges[:-1], edges[-1])


def char_starts(text: str, words: list[WordTime] | None, total_ms: float | None = None) -> list[float] | None:
    """When each character starts, in ms from the sentence's start, from its word times (None:
    no timings, or not for these words). The characters after the last word run to `total_ms`
    (unknown while the sentence streams: then they start where the last word ends)."""
    spans = word_char_spans(text)
    if not words or len(words) != len(spans):
        return None
    bounds = [(0, 0.0)]  # (character index, ms): each run of characters spreads between two bounds
    limit = float("inf") if total_ms is None else total_ms
    for (a, b), word in zip(spans, words):
        start = min(max(1000.0 * word.start, bounds[-1][1]), limit)
        end = min(max(1000.0 * word.end, start), limit)
        bounds += [(a, start), (b, end)]
    bounds.append((len(text), bounds[-1][1] if total_ms is None else total_ms))
    starts: list[float] = []
    for (i0, t0), (i1, t1) in zip(bounds, bounds[1:]):
        starts += [t0 + (t1 - t0) * k / (i1 - i0) for k in range(i1 - i0)]
    return starts


def word_alignment(text: str, words: list[WordTime] | None, samples: int, rate: int) -> dict[str, Any]:
    """A whole sentence's characters timed by its word times (seconds from the sentence's start)."""
    total_ms = 1000.0 * samples / rate
    starts = char_starts(text, words, total_ms)
    if starts is None:
        return even_alignment(text, samples, rate)
    return _alignment(list(text), [round(s) for s in starts], round(total_ms))


class ChunkAligner:
    """A sentence's alignment split over its chunks as they come. A chunk carries the characters
    that start before its end; every chunk carries at least one while there are some, and the
    sentence's last character waits for its last chunk, so each message's alignment spans its
    audio (a client's clock advances by every message). Integer ms edges are taken from the
    sentence's start, so the messages' spans add up to the sentence exactly."""

    def __init__(self, text: str, words: list[WordTime] | None) -> None:
        self.chars = list(text)
        self.starts = char_starts(text, words)  # None: no timings, all go with the last chunk
        self.sent = 0  # characters given out so far

    def take(self, start_ms: float, end_ms: float, last: bool) -> dict[str, Any] | None:
        """The alignment of the chunk [start_ms, end_ms) of the sentence (None: no character)."""
        t0, t1 = round(start_ms), round(end_ms)
        stop = self._stop(end_ms, last)
        chars, self.sent = self.chars[self.sent:stop], stop
        if not chars:
            return None
        if self.starts is None:
            return _alignment(chars, [(t1 - t0) * k // len(chars) for k in range(len(chars))], t1 - t0)
        starts = [min(max(round(s), t0), t1) - t0 for s in self.starts[stop - len(chars):stop]]
        return _alignment(chars, starts, t1 - t0)

    def _stop(self, end_ms: float, last: bool) -> int:
        n = len(self.chars)
        if last:
            return n
        if self.starts is None or self.sent >= n - 1:
            return self.sent
        stop = min(bisect_left(self.starts, end_ms), n - 1)
        return max(stop, self.sent + 1)


def _alignment(chars: list[str], starts_ms: list[int], end_ms: int) -> dict[str, Any]:
    ends = starts_ms[1:] + [end_ms]
    return {
        "chars": chars,
        "charStartTimesMs": starts_ms,
        "charDurationsMs": [b - a for a, b in zip(starts_ms, ends)],
    }
