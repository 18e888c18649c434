"""The spoken form of a sentence: one spelling for every text the voice speaks identically.

The engine is fed the spoken form (and seeded from it), so two texts with the same spoken form
give the same audio by construction, and a cached sentence equals a fresh synthesis of any text
that shares its key.

Each rule below was checked against the voice's phonemizer (espeak-ng through piper-tts); the
evidence is in tests/test_cache_spoken_form.py. A rule that would merge texts espeak speaks
differently is left out, whatever a generic normaliser would do:

- case is kept: "US"/"us", "IT"/"It", "Polish"/"polish" get different phonemes;
- punctuation is kept: "?" / "!" / "." / "," / ";" change the phonemes (intonation, pauses);
- NFKC is applied only to width, font and no-break variants, ligatures and compatibility
  punctuation/spaces (fullwidth "Ｈｅｌｌｏ" is otherwise spelled out code by code, "２０２４" is
  dropped); it is NOT applied where the compatibility form reads differently: "½" -> "1⁄2",
  "①" -> "1", "™" -> "TM", "№" -> "No", "ª" -> "a", "µ" (micro) -> "μ" (mu);
- typographic quotes become ASCII quotes (same phonemes);
- the en dash becomes the em dash (both read as a pause when spaced, nothing when not), but the
  hyphen, U+2010/U+2011 hyphens, figure dash, horizontal bar and minus sign all read differently
  ("well-known" vs "well–known", "5 − 3" says "minus") and stay as they are;
- runs of whitespace (tabs, newlines, no-break and ideographic spaces) become one space, and
  leading/trailing whitespace goes.
"""

from __future__ import annotations

import re
import unicodedata
import zlib

# Decomposition tags whose compatibility form is read the same (or is the only readable form).
_SAFE_TAGS = frozenset({"<wide>", "<narrow>", "<font>", "<noBreak>"})
# Tags that are safe only for punctuation and spaces ("…" -> "...", U+2002 -> " ", "﹖" -> "?");
# for letters and symbols they change the word ("µ" -> "μ", "№" -> "No").
_PUNCT_TAGS = frozenset({"<compat>", "<small>"})
_LIGATURES = frozenset("\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06")  # ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ

_TYPOGRAPHY = str.maketrans(
    {
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',  # “ ” „ ‟
        "\u00ab": '"', "\u00bb": '"',  # « »
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",  # ‘ ’ ‚ ‛
        "\u2039": "'", "\u203a": "'",  # ‹ ›
        "\u2013": "\u2014",  # en dash -> em dash
    }
)
_WHITESPACE = re.compile(r"\s+")


def _compat_is_safe(ch: str) -> bool:
    decomposition = unicodedata.decomposition(ch)
    if not decomposition.startswith("<"):
        return False
    tag = decomposition.split(" ", 1)[0]
    if tag in _SAFE_TAGS or ch in _LIGATURES:
        return True
    return tag in _PUNCT_TAGS and unicodedata.category(ch)[0] in "PZ"


def _selective_nfkc(text: str) -> str:
    if text.isascii():
        return text
    out = [unicodedata.normalize("NFKC", ch) if _compat_is_safe(ch) else ch for ch in text]
    return "".join(out)


def spoken_form(text: str) -> str:
    """The canonical spelling of `text` for synthesis and cache keys (idempotent)."""
    form = unicodedata.normalize("NFC", text)  # "e" + U+0301 and "é" are one letter
    form = _selective_nfkc(form)
    form = form.translate(_TYPOGRAPHY)
    form = _WHITESPACE.sub(" ", form).strip()
    return unicodedata.normalize("NFC", form)


def seed_of(spoken: str) -> int:
    """The noise seed of a sentence already in its spoken form."""
    return zlib.crc32(spoken.encode("utf-8"))


def spoken_seed(text: str) -> int:
    """The noise seed of a sentence: a function of its spoken form, so every text with the same
    spoken form (and so the same cache key) gets the same audio."""
    return seed_of(spoken_form(text))
