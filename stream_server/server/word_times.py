"""Word timestamps of a sentence: its timing event (the voice's spoken word groups, in frames)
onto the words of the text as the client wrote it (text/words.py).

A sentence's word times are in seconds from its own start (WordTime); the session's Words event
carries them with the sentence's offset in its context, and `context_words` is the one place that
offset is applied (the native protocol's `words` count from the context's start; ElevenLabs'
alignments count from the sentence's, and use the times as they are).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine.requests import TimingEvent
from ..text.words import text_words


@dataclass(frozen=True)
class WordTime:
    word: str
    start: float  # seconds from the sentence's start
    end: float


def word_times(text: str, timing: TimingEvent) -> list[WordTime]:
    """The text's words, timed.

    When the voice's spoken word groups match the text's words one to one, each word gets its
    group's span. Otherwise (numbers, abbreviations and symbols expand into several spoken
    words) the voiced span (first group's start to last group's end) is spread over the text's
    words in proportion to their character counts.
    """
    words = text_words(text)
    if not words:
        return []
    groups = timing.word_frames
    if len(groups) == len(words):
        spans = [(float(a), float(b)) for a, b in groups]
    else:
        lo, hi = (groups[0][0], groups[-1][1]) if groups else (0, timing.num_frames)
        total = sum(len(w) for w in words)
        spans, done = [], 0
        for w in words:
            a = lo + (hi - lo) * done / total
            done += len(w)
            spans.append((a, lo + (hi - lo) * done / total))
    fs = timing.frame_seconds
    return [WordTime(w, a * fs, b * fs) for w, (a, b) in zip(words, spans)]


def context_words(words: list[WordTime], offset: float) -> list[dict[str, Any]]:
    """[{"word", "start", "end"}] in seconds from the context's start (the sentence starts at
    `offset`), to 0.1 ms."""
    return [{"word": w.word, "start": round(offset + w.start, 4), "end": round(offset + w.end, 4)} for w in words]


def word_timestamps(text: str, timing: TimingEvent, offset: float = 0.0) -> list[dict[str, Any]]:
    """A sentence's words as the native protocol sends them (its sentence starting at `offset`)."""
    return context_words(word_times(text, timing), offset)
