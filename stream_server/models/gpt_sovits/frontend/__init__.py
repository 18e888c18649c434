"""GPT-SoVITS v2 text frontend: text -> v2 phoneme ids (+ BERT features), nothing downloaded.

    fe = TextFrontend(bert_dir)            # bert_dir: local chinese-roberta-wwm-ext-large (zh only)
    for piece in fe.split(text, "cut5", lang):
        out = fe.phones(piece, lang)       # out.phone_ids, out.bert [1024, P], out.norm_text

Languages: en, zh, all_zh, auto (Chinese/English); anything else raises
UnsupportedLanguageError. The modules say where they follow upstream (RVC-Boss/GPT-SoVITS) and
where they differ.
"""

from .bert import BERT_DIM, BertModelMissing, bert_features
from .frontend import FrontendOutput, TextFrontend
from .segment import (
    METHODS,
    SUPPORTED_LANGUAGES,
    EmptyTextError,
    UnsupportedLanguageError,
    cut,
    language_runs,
)
from .symbols import SYMBOLS, VOCAB_SIZE, UnknownPhoneError, to_ids


def split(text: str, method: str = "cut5", lang: str = "zh") -> list[str]:
    """api_v2 sentence splitting (no models needed)."""
    return TextFrontend().split(text, method, lang)


__all__ = [
    "BERT_DIM", "METHODS", "SUPPORTED_LANGUAGES", "SYMBOLS", "VOCAB_SIZE",
    "BertModelMissing", "EmptyTextError", "FrontendOutput", "TextFrontend",
    "UnknownPhoneError", "UnsupportedLanguageError",
    "bert_features", "cut", "language_runs", "split", "to_ids",
]
