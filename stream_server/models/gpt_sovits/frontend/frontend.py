"""The entry point the GPT-SoVITS backend calls: text -> phoneme ids + BERT features.

``TextFrontend.phones(text, lang)`` is upstream ``TextPreprocessor.get_phones_and_bert`` for one
piece: language runs, per-run G2P (``clean_text``), BERT features for Chinese runs and zeros
for English, concatenated; when the piece has fewer than 6 phones it is done again with a
leading "." (upstream's retry, which gives very short text a pause to start from).
``TextFrontend.split(text, method, lang)`` is api_v2's sentence splitting (``pre_seg_text``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from . import chinese, english
from .bert import BertModel, bert_features, check_bert_dir, load_bert, zero_features
from .segment import check_language, language_runs, pieces
from .symbols import to_ids

MIN_PHONES = 6  # upstream retries shorter pieces with a "." in front


@dataclass(frozen=True)
class FrontendOutput:
    phone_ids: list[int]  # v2 symbol ids, what T2S and SoVITS embed
    bert: torch.Tensor  # [1024, len(phone_ids)] float32
    norm_text: str
    phones: tuple[str, ...]  # the symbols behind phone_ids (logs, tests)


class TextFrontend:
    """Holds the lazily loaded dictionaries and BERT model; thread-safe for reads once loaded."""

    def __init__(self, bert_dir: Path | str | None = None, bert_device: str = "cpu"):
        self.bert_dir = Path(bert_dir) if bert_dir is not None else None
        self.bert_device = bert_device  # where BERT runs; features always come back on the CPU

    @functools.cached_property
    def english(self) -> english.EnglishG2P:
        return english.load_english()

    @functools.cached_property
    def chinese(self) -> chinese.ChineseG2P:
        return chinese.load_chinese()

    @functools.cached_property
    def bert(self) -> BertModel:
        return load_bert(str(check_bert_dir(self.bert_dir).resolve()), self.bert_device)

    def warm(self, langs: set[str]) -> None:
        """Load now what text in `langs` will need (dictionaries, number words, the OOV model,
        jieba): a voice's first sentences must not wait seconds for it on the engine thread."""
        english_too = bool(langs & {"en", "auto"})
        chinese_too = bool(langs & {"zh", "all_zh", "auto"})
        if english_too:
            self.phones("Warm up 1 word: zyxwv.", "en")  # numbers (inflect) and an unknown word (OOV model)
        if chinese_too:
            _ = self.chinese  # jieba and pypinyin; BERT loads on the first Chinese text (needs bert_dir)

    def split(self, text: str, method: str = "cut5", lang: str = "zh") -> list[str]:
        """api_v2 ``text_split_method`` plus upstream's piece rules (see ``segment.pieces``)."""
        check_language(lang)
        return pieces(text, method, lang)

    def phones(self, text: str, lang: str) -> FrontendOutput:
        """One piece of text in ``lang`` (en, zh, all_zh, auto) -> ids, BERT features, text."""
        out = self._phones(text, lang)
        if len(out.phone_ids) < MIN_PHONES:
            out = self._phones("." + text, lang)
        return out

    def preprocess(self, text: str, lang: str, method: str = "cut5") -> list[FrontendOutput]:
        """Upstream ``TextPreprocessor.preprocess``: split, then every non-empty piece."""
        outs = (self.phones(p, lang) for p in self.split(text, method, lang))
        return [o for o in outs if o.norm_text]

    def _phones(self, text: str, lang: str) -> FrontendOutput:
        phones: list[str] = []
        feats: list[torch.Tensor] = []
        norm: list[str] = []
        for run_lang, run in language_runs(text, lang):
            if run_lang == "en":
                p, n = english.g2p(run, self.english)
                f = zero_features(len(p))
            else:
                p, word2ph, n = chinese.g2p(run, self.chinese)
                f = bert_features(n, word2ph, self.bert_dir, self.bert if n else None)
            phones += p
            feats.append(f)
            norm.append(n)
        bert = torch.cat(feats, dim=1) if feats else zero_features(0)
        return FrontendOutput(to_ids(phones), bert, "".join(norm), tuple(phones))
