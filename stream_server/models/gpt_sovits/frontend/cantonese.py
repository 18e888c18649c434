"""Cantonese (``yue``) G2P as GPT-SoVITS v2 does it (upstream ``text/cantonese.py``).

Upstream ``cleaner.clean_text(text, "yue", "v2")``:

1. ``text_normalize``: PaddleSpeech's ``TextNormalizer`` (split into sentences, traditional ->
   simplified, numbers/dates/units -> hanzi; our ``zh_normalize.split_sentences`` /
   ``verbalize``), then its own punctuation map: quotes and brackets go, ``~``/``～``/``—``
   become ``-``, and only hanzi (U+4E00-U+9FA5) and ``!?…,.-`` are kept. Unlike the Mandarin
   path it neither collapses repeated punctuation nor rewrites 嗯/呣.
2. ``g2p``: ToJyutping reads every character; each syllable is cut into two parts, the first
   toneless and the second carrying the tone digit, both prefixed with "Y" (so they cannot
   clash with Mandarin symbols); punctuation passes through.
3. Parts that are not in the v2 table become ``UNK`` (upstream's cut gives some, e.g. the
   vowel-initial 甕 ung3 -> ``Yung`` + ``Yg3``, and ``Yung`` is not a v2 symbol).

The cut is not phonological: a syllable with a consonant initial splits after the initial
(``gw``/``kw``/``ng`` are one initial); a vowel-initial one splits after a short vowel prefix
(``aa``; ``ai au ap at ak``; ``a``; ``e``; ``ong on ou oi ok o``; ``uk ung``), and a syllable
that is all prefix repeats its last letter (``aa3`` -> ``Yaa`` + ``Ya3``, ``ng5`` -> ``Yng`` +
``Yg5``). The rules are ours, written to give upstream's parts.

Traditional -> simplified is upstream's own (PaddleSpeech's) character table, loaded from the
``zh-normalization`` package, which ships the same data, when it is installed. Without it,
OpenCC converts one character at a time (as upstream's table is applied); a conversion that
leaves U+4E00-U+9FA5 is not made (upstream keeps Cantonese characters such as 嗰 喎 噚, which
OpenCC turns into extension characters that the filter would drop), and a short list of
common characters follows upstream's table; rare characters may still differ.

Difference: a character ToJyutping cannot read (a bare radical such as 艹) makes upstream
fail; it is dropped here.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from .symbols import PUNCTUATION, SYMBOL_TO_ID, UNK
from .zh_normalize import split_sentences, upstream_t2s, verbalize

_HANZI_LO, _HANZI_HI = "\u4e00", "\u9fa5"
_PUNCT = "".join(PUNCTUATION)

# For the OpenCC fallback: upstream's table differs from OpenCC on these common characters;
# upstream keeps the first group as written and maps each pair's first to its second (榜 ->
# 搒 is a slip in upstream's table, kept for the same readings). Rarer differences remain.
_T2S_KEEP = "乾於閒唸啓嚮夥徵捱摺鷄牀説菸溼脣蓆昇樑祕羣豔傢俬洩産眞"
_T2S_PAIRS = (
    "餘馀 麼麽 鍾锺 榜搒 託讬 姪侄 砲炮 痺痹 鉅钜 瀋渖 綵䌽 鏇镟 敍叙 緜绵 隂阴 彊强 甦苏 簷檐"
)

# Punctuation -> the model's set (upstream cantonese.rep_map). Quotes and brackets map to "'"
# upstream, which the filter then drops, so they are dropped here directly.
_PUNCT_MAP = {
    "：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",",
    "、": ",", "...": "…", "$": ".", "—": "-", "～": "-", "~": "-",
    **{q: "" for q in "“”\"‘’（）()《》【】[]「」"},
}
_PUNCT_RE = re.compile("|".join(map(re.escape, sorted(_PUNCT_MAP, key=len, reverse=True))))
_NOT_KEPT = re.compile(f"[^{_HANZI_LO}-{_HANZI_HI}{re.escape(_PUNCT)}]+")

# How a syllable is cut (see the module docstring). Consonant initials, two-letter ones first.
_CONSONANTS = ("gw", "kw", "ng", *"bpmfdtnlgkhwzcsjy")
# Vowel-initial syllables: the first part is the first of these the syllable starts with
# (so "aai" is cut after "aa", "ong" is not cut after "on").
_VOWEL_PREFIXES = {
    "a": ("aa", "ai", "au", "ap", "at", "ak", "a"),
    "e": ("e",),
    "o": ("ong", "on", "ou", "oi", "ok", "o"),
    "u": ("uk", "ung"),
}


@dataclass(frozen=True)
class CantoneseG2P:
    """ToJyutping's reader (its dictionary loads on import) and the t2s conversion."""

    jyutping_list: Callable[[str], list[tuple[str, str | None]]]
    t2s: Callable[[str], str]
    exact_t2s: bool  # upstream's own traditional -> simplified table (else OpenCC's)


def load() -> CantoneseG2P:
    tojyutping = importlib.import_module("ToJyutping")  # ~1 s: builds its trie from its dictionary
    exact = upstream_t2s()
    return CantoneseG2P(tojyutping.get_jyutping_list, exact or opencc_t2s(), exact is not None)


def opencc_t2s() -> Callable[[str], str]:
    """Fallback: OpenCC per character, kept in U+4E00-U+9FA5, upstream's choice for common ones."""
    import opencc

    cc = opencc.OpenCC("t2s")
    overrides = {c: c for c in _T2S_KEEP} | {p[0]: p[1] for p in _T2S_PAIRS.split()}

    @functools.lru_cache(maxsize=8192)
    def one(ch: str) -> str:
        if ch in overrides:
            return overrides[ch]
        out = cc.convert(ch)
        return out if len(out) == 1 and _HANZI_LO <= out <= _HANZI_HI else ch

    return lambda text: "".join(map(one, text))


# -- normalisation ---------------------------------------------------------------------------

def map_punctuation(text: str) -> str:
    """Upstream cantonese.replace_punctuation: map to ``!?…,.-``, keep only hanzi and those."""
    return _NOT_KEPT.sub("", _PUNCT_RE.sub(lambda m: _PUNCT_MAP[m.group(0)], text))


def normalize(text: str, g: CantoneseG2P) -> str:
    """Upstream cantonese.text_normalize (before unreadable characters are dropped)."""
    return "".join(map_punctuation(verbalize(s, g.t2s)) for s in split_sentences(text))


# -- Jyutping -> v2 symbols ------------------------------------------------------------------

def _first_part(body: str) -> str:
    for c in _CONSONANTS:
        if body.startswith(c):
            return c
    for prefix in _VOWEL_PREFIXES.get(body[:1], ()):
        if body.startswith(prefix):
            return prefix
    raise ValueError(f"cannot cut Jyutping syllable {body!r}")


def syllable_phones(syllable: str) -> list[str]:
    """"gwong2" -> ["Ygw", "Yong2"]; "aa3" -> ["Yaa", "Ya3"]; "m4" -> ["Ym", "Ym4"]."""
    body, tone = (syllable[:-1], syllable[-1]) if syllable[-1:].isdigit() else (syllable, "")
    first = _first_part(body)
    rest = body[len(first):] or first[-1]
    return ["Y" + first, "Y" + rest + (tone if tone not in ("", "0") else "")]


def _known(phone: str) -> str:
    return phone if phone in SYMBOL_TO_ID else UNK


def g2p(text: str, g: CantoneseG2P) -> tuple[list[str], str]:
    """Raw text -> (v2 phone symbols, normalised text), as upstream clean_text(.., "yue", "v2")."""
    phones: list[str] = []
    kept: list[str] = []
    for ch, jyutping in g.jyutping_list(normalize(text, g)):
        if ch in _PUNCT:
            phones.append(ch)
        elif jyutping:
            phones.extend(map(_known, syllable_phones(jyutping)))
        else:
            continue  # no reading (upstream raises): the character is not spoken
        kept.append(ch)
    return phones, "".join(kept)
