"""Protocol-neutral events a session sends to its client; each wire adapter serialises them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .word_times import WordTime


@dataclass(frozen=True)
class Ready:
    session_id: str
    voice: str
    sample_rate: int
    format: str


@dataclass(frozen=True)
class SentenceStart:
    context_id: str
    index: int
    text: str


@dataclass(frozen=True)
class Words:
    """Word timestamps of a sentence, in seconds from the sentence's start, and where the sentence
    starts in its context (word_times.context_words puts them on the context's clock). Sent
    after the sentence's SentenceStart, before its first Audio."""

    context_id: str
    index: int
    words: list[WordTime]
    offset: float = 0.0  # seconds of the context's audio before this sentence


@dataclass(frozen=True)
class Audio:
    context_id: str
    index: int
    pcm: bytes
    last: bool = False  # the sentence's last chunk (its SentenceEnd follows)


@dataclass(frozen=True)
class SentenceEnd:
    context_id: str
    index: int
    samples: int
    cached: bool = False


@dataclass(frozen=True)
class Flushed:
    context_id: str


@dataclass(frozen=True)
class Cancelled:
    context_id: str


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Error:
    code: str
    message: str
    context_id: str | None = None
    retry_after: float | None = None  # seconds: with `overloaded`, when to try again


SessionEvent = Ready | SentenceStart | Words | Audio | SentenceEnd | Flushed | Cancelled | Done | Error


class SessionError(Exception):
    """Bad client input, or a refusal: reported to that client as an error event; the session
    goes on. `retry_after` (seconds) comes with `overloaded`: the server is at capacity."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_unicode(text: str, what: str = "text") -> str:
    """`text`, if it is valid Unicode; SessionError `invalid_text` if it holds an unpaired
    surrogate (JSON may escape one, "\\udcff", and it can never be encoded: synthesis, the cache's
    key and every UTF-8 wire would fail on it)."""
    if not text.isascii():
        found = _SURROGATE.search(text)
        if found is not None:
            raise SessionError(
                "invalid_text",
                f"{what} is not valid Unicode: an unpaired surrogate (U+{ord(found.group()):04X}) at "
                f"position {found.start()}; surrogates must come in pairs",
            )
    return text


def shown(value: object, limit: int = 64) -> str:
    """A client's value quoted in an error message, cut short: whatever it sent, the reply stays small."""
    return cut(repr(value), limit)


def cut(text: str, limit: int) -> str:
    """A message that may hold a client's value (a path it named, in a loader's error), cut short."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
