"""Korean G2P for GPT-SoVITS v2: text -> Hangul jamo phones (upstream ``text/korean.py``).

Upstream's ``clean_text(text, "ko", "v2")`` runs, in order:

1. every Latin letter -> its Korean name (``A`` -> 에이; case-insensitive, letter by letter, so
   no English word ever reaches g2pk2's English converter);
2. g2pk2's ``G2p`` (python-mecab-ko tagging, numbers spelled out, the standard pronunciation
   rules) -> Hangul syllables as pronounced;
3. syllables -> compatibility jamo (the ``jamo`` package), each compound vowel split in two
   (ㅘ -> ㅗㅏ, ㅑ -> ㅣㅏ, ...);
4. a fix for g2pk2's missed ㄹ -> ㄴ after a word ending in "-을"/"-를";
5. a trailing jamo gets a "." after it;
6. each character is a phone: full-width punctuation -> ASCII, a space -> 空, a newline -> ".",
   a character outside the v2 table -> 停.

Korean has no ``text_normalize`` upstream, so the normalized text is the input unchanged.

Differences from upstream, and why:

* g2pk2 is built without its first-use side effects: its import asks NLTK to download the CMU
  dictionary and its constructor may pip-install MeCab; here the download is suppressed, MeCab
  (python-mecab-ko with its packaged dictionary) is opened directly, and the English
  dictionary is empty. Step 1 leaves no Latin letter for that dictionary, so phones are
  unchanged (the only text g2pk2's English step could still see is a run of apostrophes, which
  no CMU entry is).
* Calls into MeCab are serialized with a lock (the tagger is shared between threads).
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .symbols import SYMBOL_TO_ID

# Korean names of the Latin letters, as read aloud.
_LETTER_NAMES = dict(
    pair.split(":")
    for pair in (
        "a:에이 b:비 c:시 d:디 e:이 f:에프 g:지 h:에이치 i:아이 j:제이 k:케이 l:엘 m:엠 "
        "n:엔 o:오 p:피 q:큐 r:아르 s:에스 t:티 u:유 v:브이 w:더블유 x:엑스 y:와이 z:제트"
    ).split()
)
# Upstream matches each letter with re.IGNORECASE, which also takes İ ı ſ and the Kelvin sign.
_LATIN = re.compile("[a-z]", re.IGNORECASE)

# Compound vowels -> the two simple vowels the v2 table has (glide written as ㅗ/ㅜ/ㅣ/ㅡ).
_SPLIT_VOWELS = str.maketrans({
    "ㅘ": "ㅗㅏ", "ㅙ": "ㅗㅐ", "ㅚ": "ㅗㅣ", "ㅝ": "ㅜㅓ", "ㅞ": "ㅜㅔ", "ㅟ": "ㅜㅣ", "ㅢ": "ㅡㅣ",
    "ㅑ": "ㅣㅏ", "ㅒ": "ㅣㅐ", "ㅕ": "ㅣㅓ", "ㅖ": "ㅣㅔ", "ㅛ": "ㅣㅗ", "ㅠ": "ㅣㅜ",
})

# g2pk2 leaves "-을/-를 ㄹ..." as ㄹ; spoken (and upstream) it is ㄴ.
_RIEUL_AFTER_EUL = re.compile("([ㅇㄹ]ㅡㄹ) ㄹ")
# Text ending in a jamo gets a full stop ("$" also matches before a final newline, as upstream).
_FINAL_JAMO = re.compile("([\u3131-\u3163])$")

_PUNCTUATION = {
    "：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",",
    " ": "空",
}
_UNKNOWN = "停"  # upstream's phone for any character outside the table


@dataclass
class KoreanG2P:
    """g2pk2's pronouncer (MeCab inside) and the jamo decomposer; safe to share between threads."""

    pronounce: Callable[[str], str]
    to_jamo: Callable[[str], str]
    lock: threading.Lock = field(default_factory=threading.Lock)


def load() -> KoreanG2P:
    """Open MeCab and g2pk2's rule tables (a fraction of a second); nothing is downloaded."""
    jamo = importlib.import_module("jamo")
    return KoreanG2P(
        pronounce=_offline_g2pk(),
        to_jamo=lambda s: jamo.j2hcj(jamo.h2j(s)),
    )


def g2p(text: str, g: KoreanG2P) -> tuple[list[str], str]:
    """Korean text -> (v2 phone symbols, normalized text), as upstream ``clean_text(.., "ko")``."""
    spoken = _LATIN.sub(lambda m: _LETTER_NAMES[_ascii_letter(m.group())], text)
    with g.lock:
        spoken = g.pronounce(spoken)
    letters = g.to_jamo(spoken).translate(_SPLIT_VOWELS)
    letters = _RIEUL_AFTER_EUL.sub(r"\1 ㄴ", letters)
    letters = _FINAL_JAMO.sub(r"\1.", letters)
    return [_phone(ch) for ch in letters], text


def _phone(ch: str) -> str:
    ch = _PUNCTUATION.get(ch, ch)
    return ch if ch in SYMBOL_TO_ID else _UNKNOWN


@functools.cache
def _ascii_letter(ch: str) -> str:
    """The a-z letter a case-insensitive match stands for (``K`` -> ``k``, ``ſ`` -> ``s``)."""
    return next(c for c in _LETTER_NAMES if re.fullmatch(c, ch, re.IGNORECASE))


def _offline_g2pk() -> Callable[[str], str]:
    """g2pk2's ``G2p`` with MeCab opened directly, no CMU dictionary and its regexes compiled
    once (see the module docstring)."""
    g2pk2 = _import_g2pk2()
    mecab = importlib.import_module("mecab")
    utils = importlib.import_module("g2pk2.utils")
    g2p = g2pk2.G2p.__new__(g2pk2.G2p)  # its __init__ would check/install MeCab and need NLTK data
    g2p.use_konlpy = False
    g2p.mecab_path = None
    g2p.mecab = mecab.MeCab()
    g2p.cmu = {}  # English words: none reach g2pk2 (letters are spelled out first)
    g2p.rule2text = utils.get_rule_id2text()
    # g2pk2 passes ~400 rule patterns as strings to re.sub, beyond re's cache: each call would
    # compile them all again (~100 ms a sentence); re.sub takes compiled patterns as well. The
    # rule ids only feed verbose=True glosses, yet are joined into text for every rule and call.
    g2p.table = [(re.compile(pat), repl, []) for pat, repl, _ids in utils.parse_table()]
    idioms = _read_idioms(Path(g2pk2.__file__).with_name("idioms.txt"))
    g2p.idioms = functools.partial(_apply_idioms, idioms)  # it re-read the file on every call
    return g2p


def _read_idioms(path: Path) -> list[tuple[re.Pattern[str], str]]:
    """g2pk2's idioms.txt: ``pattern===replacement`` lines, ``#`` starting a comment."""
    rules = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if "===" in line:
            pat, repl = line.split("===")
            rules.append((re.compile(pat), repl))
    return rules


def _apply_idioms(rules: list[tuple[re.Pattern[str], str]], text: str, *_flags: bool) -> str:
    for pat, repl in rules:
        text = pat.sub(repl, text)
    return text


def _import_g2pk2() -> Any:
    """Import g2pk2 without letting it try to download NLTK's cmudict (it does so on import)."""
    import nltk  # a project dependency already (english.py)

    download = nltk.download
    nltk.download = lambda *args, **kwargs: False
    try:
        return importlib.import_module("g2pk2.g2pk2")
    finally:
        nltk.download = download
