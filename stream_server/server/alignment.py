"""ElevenLabs-style character alignment of one sentence's audio, shared by both ElevenLabs adapters:
`{"chars", "charStartTimesMs", "charDurationsMs"}`, integer ms from the start of the message's audio.

From the engine's word timings (the session's Words event) when there are any: a word's characters
spread evenly over that word's spoken span, the characters between words (spaces, punctuation) over
the pause between them. Each character lasts until the next one starts and the last one until the
audio ends, so a client that advances its clock by each message's last start + duration stays on
the audio (Pipecat does). Without word timings the characters spread evenly over the audio.
"""

from __future__ import annotations

from typing import Any

from ..text.words import word_char_spans  # the words the session times (the same tokenizer)
from .word_times import WordTime


def even_alignment(text: str, samples: int, rate: int) -> dict[str, Any]:
    """The sentence's characters spread evenly over its audio, in ms from the message's start."""
    chars = list(text)
    total_ms = 1000.0 * samples / rate
    edges = [round(i * total_ms / max(len(chars), 1)) for i in range(len(chars) + 1)]
    return _alignment(chars, edges[:-1], edges[-1])


def word_alignment(text: str, words: list[WordTime] | None, samples: int, rate: int) -> dict[str, Any]:
    """Characters timed by the sentence's word times (the Words event's, seconds from the
    sentence's start: the start of this message's audio)."""
    spans = word_char_spans(text)
    if not words or len(words) != len(spans):
        return even_alignment(text, samples, rate)  # no timings (or not for these words)
    total_ms = 1000.0 * samples / rate
    bounds = [(0, 0.0)]  # (character index, ms): each run of characters spreads between two bounds
    for (a, b), word in zip(spans, words):
        start = min(max(1000.0 * word.start, bounds[-1][1]), total_ms)
        end = min(max(1000.0 * word.end, start), total_ms)
        bounds += [(a, start), (b, end)]
    bounds.append((len(text), total_ms))
    starts: list[float] = []
    for (i0, t0), (i1, t1) in zip(bounds, bounds[1:]):
        starts += [t0 + (t1 - t0) * k / (i1 - i0) for k in range(i1 - i0)]
    return _alignment(list(text), [round(s) for s in starts], round(total_ms))


def _alignment(chars: list[str], starts_ms: list[int], end_ms: int) -> dict[str, Any]:
    ends = starts_ms[1:] + [end_ms]
    return {
        "chars": chars,
        "charStartTimesMs": starts_ms,
        "charDurationsMs": [b - a for a, b in zip(starts_ms, ends)],
    }
