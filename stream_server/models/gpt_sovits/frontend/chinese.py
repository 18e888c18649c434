"""Mandarin G2P for GPT-SoVITS v2 (upstream ``text/chinese2.py``): normalised text -> phones
and ``word2ph`` (phones per character: 2 for a syllable, 1 for punctuation).

Pipeline per clause (cut after each punctuation mark): jieba words with part of speech ->
tone-sandhi merges -> pypinyin initials and finals (tone 5 = neutral) -> tone sandhi -> 儿
tone -> v2 symbols. A syllable becomes an initial symbol and a final symbol with its tone;
zero-initial syllables get the placeholders AA/EE/OO or y/w, and zhi/chi/shi/ri use the final
``ir``, zi/ci/si ``i0`` (upstream's opencpop-strict mapping, derived here by rule).

Difference: upstream picks polyphone readings with g2pW, an ONNX model downloaded at run time
(on no package index) and then its polyphone dictionary; this uses pypinyin's phrase dictionary
on each jieba word, which is upstream's own path when g2pW is off (``is_g2pw = False``) and
matches it (tests/test_gpt_sovits_chinese_upstream.py). Upstream's dictionary agrees with
pypinyin on all but 27 of its words, so the readings that differ from upstream's default are
those g2pW picks for polyphones outside it (还 alone in 我明天还钱给你: pypinyin's hai2). A
character with no usable reading (a handful of rare ones) becomes ``UNK`` where upstream would
fail. The 儿 lists are upstream's.
"""

from __future__ import annotations

import functools
import logging
import re

import jieba
import jieba.posseg
from pypinyin import Style, lazy_pinyin

from .symbols import UNK, ZH_FINALS, ZH_INITIALS
from .tone_sandhi import ToneSandhi, tone
from .zh_normalize import PUNCTUATION, normalize

_FINALS = frozenset(ZH_FINALS)
_INITIALS = frozenset(ZH_INITIALS)
_RETROFLEX = {"zh", "ch", "sh", "r"}
_DENTAL = {"z", "c", "s"}
_ZERO_INITIAL = {"a": "AA", "e": "EE", "o": "OO"}  # by the final's first letter
_WITH_INITIAL = {"uei": "ui", "iou": "iu", "uen": "un"}  # written short after an initial
_Y_SPECIAL = {"ian": "En", "ie": "E", "i": "i", "in": "in", "ing": "ing"}  # yan, ye, yi, yin, ying

# 儿 after these keeps its own tone (a full syllable, not an r-colouring): upstream's list.
NOT_ERHUA = frozenset(
    "虐儿 为儿 护儿 瞒儿 救儿 替儿 有儿 一儿 我儿 俺儿 妻儿 拐儿 聋儿 乞儿 患儿 幼儿 孤儿 婴儿 婴幼儿 "
    "连体儿 脑瘫儿 流浪儿 体弱儿 混血儿 蜜雪儿 舫儿 祖儿 美儿 应采儿 可儿 侄儿 孙儿 侄孙儿 女儿 男儿 "
    "红孩儿 花儿 虫儿 马儿 鸟儿 猪儿 猫儿 狗儿 少儿".split()
)
# ...and these are r-coloured even when jieba tags them as names/adjectives/abbreviations.
MUST_ERHUA = frozenset("小院儿 胡同儿 范儿 老汉儿 撒欢儿 寻老礼儿 妥妥儿 媳妇儿".split())


def syllable_symbols(initial: str, final: str) -> list[str]:
    """pypinyin strict initial + final with tone ("zh", "ong1") -> v2 symbols (["zh", "ong1"])."""
    t, f = final[-1:], final[:-1]
    if t not in "12345" or not t or not f:
        return [UNK]
    if initial:
        f = _WITH_INITIAL.get(f, f)
        if f == "i" and initial in _RETROFLEX:
            f = "ir"
        elif f == "i" and initial in _DENTAL:
            f = "i0"
        elif initial in ("j", "q", "x") and f.startswith("u"):
            f = "v" + f[1:]
        head = initial
    elif f[0] in _ZERO_INITIAL:
        head = _ZERO_INITIAL[f[0]]
    elif f[0] == "i":
        head, f = "y", _Y_SPECIAL.get(f, f[1:])
    elif f[0] == "u":
        head, f = "w", ("u" if f == "u" else f[1:])
    elif f[0] == "v":
        head = "y"
    else:
        return [UNK]
    if head not in _INITIALS or f not in _FINALS:
        return [UNK]
    return [head, f + t]


def apply_erhua(initials: list[str], finals: list[str], word: str, pos: str) -> list[str]:
    """儿 at the end of a word: er1 -> er2, and r-coloured 儿 takes the previous syllable's tone."""
    finals = list(finals)
    if finals and word[-1] == "儿" and finals[-1] == "er1":
        finals[-1] = "er2"
    if word not in MUST_ERHUA and (word in NOT_ERHUA or pos in ("a", "j", "nr")):
        return finals
    if len(finals) != len(word) or len(word) < 2:
        return finals
    if word[-1] == "儿" and finals[-1] in ("er2", "er5") and word[-2:] not in NOT_ERHUA:
        prev_tone = finals[-2][-1:]
        finals[-1] = "er" + prev_tone
    return finals


class ChineseG2P:
    """jieba tokenizers (dictionary loaded once, ~1 s) and the tone-sandhi rules."""

    def __init__(self):
        jieba.setLogLevel(logging.WARNING)
        self.tokenizer = jieba.Tokenizer()
        self.posseg = jieba.posseg.POSTokenizer(self.tokenizer)
        self.sandhi = ToneSandhi(lambda w: list(self.tokenizer.cut_for_search(w)))

    def words(self, clause: str) -> list[tuple[str, str]]:
        return [(p.word, p.flag) for p in self.posseg.lcut(clause)]

    def clause_finals(self, clause: str) -> list[tuple[str, list[str], list[str]]]:
        """Per (merged) word: the word, its initials and its sandhi-modified finals."""
        out = []
        for word, pos in self.sandhi.pre_merge(self.words(clause)):
            if pos == "eng":
                continue
            initials = _pinyin(word, Style.INITIALS)
            finals = _pinyin(word, Style.FINALS_TONE3)
            finals = self.sandhi.modify(word, pos, finals)
            out.append((word, initials, apply_erhua(initials, finals, word, pos)))
        return out

    def g2p(self, norm_text: str) -> tuple[list[str], list[int]]:
        """Normalised text -> (phones, word2ph); ``sum(word2ph) == len(phones)``,
        ``len(word2ph) == len(norm_text)``."""
        phones: list[str] = []
        word2ph: list[int] = []
        clauses = [c for c in re.split(rf"(?<=[{re.escape(PUNCTUATION)}])\s*", norm_text) if c.strip()]
        for clause in clauses:
            for word, initials, finals in self.clause_finals(re.sub("[a-zA-Z]+", "", clause)):
                for _char, c, v in zip(word, initials, finals):
                    if c == v or not tone(v):  # punctuation (or a character without a reading)
                        sym = [v] if v in PUNCTUATION else [UNK]
                    else:
                        sym = syllable_symbols(c, v)
                    phones.extend(sym)
                    word2ph.append(len(sym))
        return phones, word2ph


def _pinyin(word: str, style: Style) -> list[str]:
    # one item per character, also for punctuation runs (pypinyin would group them)
    # pypinyin takes a list from `errors` (one item per character); its annotation says str
    return lazy_pinyin(word, style=style, neutral_tone_with_five=True, errors=lambda s: list(s))  # type: ignore[arg-type,return-value]


@functools.lru_cache(maxsize=1)
def load_chinese() -> ChineseG2P:
    return ChineseG2P()


# Upstream's pause marks: when the text holds one, it is read as a comma and then every comma
# phone of the text becomes the special silence symbol (only the first mark found applies).
PAUSE_MARKS = (("￥", "SP2"), ("^", "SP3"))


def g2p(text: str, zh: ChineseG2P | None = None) -> tuple[list[str], list[int], str]:
    """Raw Chinese text -> (phones, word2ph, normalised text), upstream ``clean_text(text, "zh")``."""
    zh = zh or load_chinese()
    for mark, symbol in PAUSE_MARKS:
        if mark in text:
            norm = normalize(text.replace(mark, ","))
            phones, word2ph = zh.g2p(norm)
            return [symbol if p == "," else p for p in phones], word2ph, norm
    norm = normalize(text)
    phones, word2ph = zh.g2p(norm)
    return phones, word2ph, norm
