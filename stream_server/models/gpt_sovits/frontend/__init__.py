"""GPT-SoVITS v2 text frontend: text -> v2 phoneme ids (+ BERT features), nothing downloaded.

    fe = TextFrontend(bert_dir)            # bert_dir: local chinese-roberta-wwm-ext-large (zh only)
    for piece in fe.split(text, "cut5", lang):
        out = fe.phones(piece, lang)       # out.phone_ids, out.bert [1024, P], out.norm_text

Languages: api_v2's v2 values (en, zh, ja, ko, yue, all_zh, all_ja, all_ko, all_yue, auto,
auto_yue); anything else raises UnsupportedLanguageError. Japanese, Korean and Cantonese runs
are spoken by the ``japanese``, ``korean`` and ``cantonese`` modules, loaded when first needed.
The modules say where they follow upstream (RVC-Boss/GPT-SoVITS) and where they differ.
"""

from .bert import BERT_DIM, BertModelMissing, bert_features
from .frontend import FrontendOutput, TextFrontend
from .lang_segment import language_runs
from .segment import (
    METHODS,
    SUPPORTED_LANGUAGES,
    EmptyTextError,
    UnsupportedLanguageError,
    cut,
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
