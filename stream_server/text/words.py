"""The words of a text as its writer wrote them: the one tokenizer that word timestamps (the
session's `words`) and character alignments (ElevenLabs') both count by.

A word is a whitespace-separated token with punctuation stripped from both ends; a token of
punctuation only is no word ("Dr." is "Dr", "O'Neil..." is "O'Neil", "—" is nothing).
"""

from __future__ import annotations

import re

# From a token's first letter or digit to its last: \S* cannot leave the token, so each match is
# one word, and a token of punctuation only has none.
_WORD = re.compile(r"[^\W_](?:\S*[^\W_])?")


def word_char_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) positions in `text` of its words."""
    return [m.span() for m in _WORD.finditer(text)]


def text_words(text: str) -> list[str]:
    """The text's words, in order."""
    return [m.group() for m in _WORD.finditer(text)]
