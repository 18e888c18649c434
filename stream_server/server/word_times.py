"""Word timestamps of a sentence, from its timing event (the voice's spoken word groups, in frames)
onto the words of the text as the client wrote it."""

from __future__ import annotations

import re

from ..engine.requests import TimingEvent

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")


def text_words(text: str) -> list[str]:
    """The sentence's words as the client wrote them: whitespace-split, punctuation stripped
    from both ends, punctuation-only tokens dropped."""
    words = (_EDGE_PUNCTUATION.sub("", token) for token in text.split())
    return [w for w in words if w]


def word_timestamps(text: str, timing: TimingEvent, offset: float = 0.0) -> list[dict]:
    """[{"word", "start", "end"}] in seconds (+ offset) for the text's words.

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
    return [
        {"word": w, "start": round(offset + a * fs, 4), "end": round(offset + b * fs, 4)}
        for w, (a, b) in zip(words, spans)
    ]
