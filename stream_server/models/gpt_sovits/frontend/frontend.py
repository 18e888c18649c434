"""The entry point the GPT-SoVITS backend calls: text -> phoneme ids + BERT features.

``TextFrontend.phones(text, lang)`` is upstream ``TextPreprocessor.get_phones_and_bert`` for one
piece: language runs (``lang_segment``), per-run G2P (``clean_text``: English, Chinese, and the
``japanese``/``korean``/``cantonese`` modules, imported when first needed), BERT features for
Chinese runs and zeros for every other language, concatenated; when the piece has fewer than
6 phones it is done again with a leading "." (upstream's retry, which gives very short text a
pause to start from).
``TextFrontend.split(text, method, lang)`` is api_v2's sentence splitting (``pre_seg_text``).
"""

from __future__ import annotations

import functools
import importlib
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from . import chinese, english, lang_segment
from .bert import BertModel, bert_features, check_bert_dir, load_bert, zero_features
from .lang_segment import language_runs
from .segment import check_language, pieces
from .symbols import to_ids

MIN_PHONES = 6  # upstream retries shorter pieces with a "." in front

# Languages whose G2P is a module of its own (``load() -> state``, ``g2p(text, state) ->
# (phones, norm_text)``), imported on first use: each pulls in large dictionaries.
OTHER_G2P = {"ja": "japanese", "ko": "korean", "yue": "cantonese"}

# What warm() loads for a language value: its own G2P, and for auto every one it can detect
# (English runs inside zh/ja/ko/yue text load English on first use).
_G2P_NEEDED = {
    "en": {"en"}, "zh": {"zh"}, "all_zh": {"zh"}, "ja": {"ja"}, "all_ja": {"ja"},
    "ko": {"ko"}, "all_ko": {"ko"}, "yue": {"yue"}, "all_yue": {"yue"},
    "auto": {"en", "zh", "ja", "ko"}, "auto_yue": {"en", "yue", "ja", "ko"},
}


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
        self._other: dict[str, tuple[ModuleType, Any]] = {}  # ja/ko/yue: module, its load()
        self._other_lock = threading.Lock()

    @functools.cached_property
    def english(self) -> english.EnglishG2P:
        return english.load_english()

    @functools.cached_property
    def chinese(self) -> chinese.ChineseG2P:
        return chinese.load_chinese()

    @functools.cached_property
    def bert(self) -> BertModel:
        return load_bert(str(check_bert_dir(self.bert_dir).resolve()), self.bert_device)

    def other_g2p(self, lang: str) -> tuple[ModuleType, Any]:
        """The Japanese/Korean/Cantonese G2P module and its loaded state (loaded once)."""
        with self._other_lock:
            if lang not in self._other:
                module = importlib.import_module(f"{__package__}.{OTHER_G2P[lang]}")
                self._other[lang] = (module, module.load())
            return self._other[lang]

    def warm(self, langs: set[str]) -> None:
        """Load now what text in `langs` will need (the language splitter, dictionaries, number
        words, the OOV model, jieba, the ja/ko/yue G2Ps): a voice's first sentences must not wait
        seconds for it on the engine thread."""
        needed = set().union(*(_G2P_NEEDED[check_language(lang)] for lang in langs))  # a voice's config
        if langs - {"en"}:
            lang_segment.warm()  # split_lang and the language detector
        if "en" in needed:
            self.phones("Warm up 1 word: zyxwv.", "en")  # numbers (inflect) and an unknown word (OOV model)
        if "zh" in needed:
            _ = self.chinese  # jieba and pypinyin; BERT loads on the first Chinese text (needs bert_dir)
        for lang in sorted(needed & OTHER_G2P.keys()):
            self.other_g2p(lang)

    def split(self, text: str, method: str = "cut5", lang: str = "zh") -> list[str]:
        """api_v2 ``text_split_method`` plus upstream's piece rules (see ``segment.pieces``)."""
        check_language(lang)
        return pieces(text, method, lang)

    def phones(self, text: str, lang: str, bert: bool = True) -> FrontendOutput:
        """One piece of text in api_v2 language ``lang`` -> ids, BERT features, text.
        ``bert=False``: zeros in place of the Chinese runs' BERT features (no BERT call), for a
        caller that needs only the phones or the normalised text."""
        out = self._phones(text, lang, bert)
        if len(out.phone_ids) < MIN_PHONES:
            out = self._phones("." + text, lang, bert)
        return out

    def preprocess(self, text: str, lang: str, method: str = "cut5") -> list[FrontendOutput]:
        """Upstream ``TextPreprocessor.preprocess``: split, then every non-empty piece."""
        outs = (self.phones(p, lang) for p in self.split(text, method, lang))
        return [o for o in outs if o.norm_text]

    def _phones(self, text: str, lang: str, bert: bool) -> FrontendOutput:
        phones: list[str] = []
        feats: list[torch.Tensor] = []
        norm: list[str] = []
        for run_lang, run in language_runs(text, lang):
            p, f, n = self._run(run_lang, run, bert)
            phones += p
            feats.append(f)
            norm.append(n)
        features = torch.cat(feats, dim=1) if feats else zero_features(0)
        return FrontendOutput(to_ids(phones), features, "".join(norm), tuple(phones))

    def _run(self, lang: str, text: str, bert: bool = True) -> tuple[list[str], torch.Tensor, str]:
        """One language run -> phones, BERT features (only Chinese has them, as upstream), text."""
        if lang == "zh":
            p, word2ph, n = chinese.g2p(text, self.chinese)
            if not bert:
                return p, zero_features(len(p)), n
            return p, bert_features(n, word2ph, self.bert_dir, self.bert if n else None), n
        if lang in OTHER_G2P:
            module, state = self.other_g2p(lang)
            p, n = module.g2p(text, state)
        else:
            if lang != "en":  # a run of marks only ("punctuation"): upstream reads " " as English
                text = " "
            p, n = english.g2p(text, self.english)
        return p, zero_features(len(p)), n
