"""Text splitting as GPT-SoVITS v2's api_v2 does it, and the languages it accepts.

``cut(text, method)`` is upstream ``text_segmentation_method.py`` (cut0-cut5, same results);
``pieces(text, method, lang)`` adds ``TextPreprocessor.pre_seg_text``: a leading 。/. when the
first clause is shorter than 4 characters, pieces under 5 characters merged into the previous
ones, a final 。/. where a piece does not end in a split mark (``.`` for en, ``。`` for every
other language), pieces over 510 characters cut at punctuation, and pieces with no word
character dropped.

The language runs of a piece are ``lang_segment.language_runs``.
"""

from __future__ import annotations

import re

# api_v2's languages for v2 (upstream TTS_Config.v2_languages)
SUPPORTED_LANGUAGES = ("auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue", "all_ko")

# Split marks (upstream ``splits``) and cut5's marks.
SPLITS = frozenset("，。？！,.?!~:：—…")
_CUT5_MARKS = frozenset(",.;?!、，。？！;：…")
_PUNCT_ONLY = frozenset("!?…,.- ")  # cut0-cut4: a piece made only of these is dropped
METHODS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")


class UnsupportedLanguageError(ValueError):
    pass


class EmptyTextError(ValueError):
    pass


def check_language(lang: str) -> str:
    if lang not in SUPPORTED_LANGUAGES:
        raise UnsupportedLanguageError(f"text_lang {lang!r} is unknown; supported: {', '.join(SUPPORTED_LANGUAGES)}")
    return lang


# -- cut0-cut5 ---------------------------------------------------------------------------------

def _sentences(text: str) -> list[str]:
    """Cut after every split mark (upstream ``split``)."""
    text = text.replace("……", "。").replace("——", "，")
    if text[-1] not in SPLITS:
        text += "。"
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch in SPLITS:
            out.append(text[start:i + 1])
            start = i + 1
    return out


def _keep(pieces: list[str]) -> str:
    return "\n".join(p for p in pieces if not set(p) <= _PUNCT_ONLY)


def cut(text: str, method: str = "cut5") -> str:
    """api_v2 ``text_split_method``: the text with a newline between pieces."""
    if method == "cut0":  # no split
        return "\n" if set(text) <= _PUNCT_ONLY else text
    text = text.strip("\n")
    if not text:
        return text
    if method == "cut1":  # four sentences a piece; the last piece takes the remainder (up to 7)
        sents = _sentences(text)
        starts: list[int | None] = list(range(0, len(sents), 4))
        starts[-1] = None
        if len(starts) > 1:
            return _keep(["".join(sents[a:b]) for a, b in zip(starts, starts[1:])])
        return _keep([text])
    if method == "cut2":  # at least 50 characters a piece
        sents = _sentences(text)
        if len(sents) < 2:
            return text
        out, cur = [], ""
        for s in sents:
            cur += s
            if len(cur) > 50:
                out.append(cur)
                cur = ""
        if cur:
            out.append(cur)
        if len(out) > 1 and len(out[-1]) < 50:
            out[-2:] = [out[-2] + out[-1]]
        return _keep(out)
    if method == "cut3":  # at 。 (the mark is removed)
        return _keep(text.strip("。").split("。"))
    if method == "cut4":  # at "." not between digits (the mark is removed)
        return _keep(re.split(r"(?<!\d)\.(?!\d)", text.strip(".")))
    if method == "cut5":  # after every punctuation mark, except a decimal point
        out, cur = [], ""
        for i, ch in enumerate(text):
            cur += ch
            decimal = ch == "." and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()
            if ch in _CUT5_MARKS and not decimal:
                out.append(cur)
                cur = ""
        if cur:
            out.append(cur)
        return "\n".join(p for p in out if not set(p) <= _CUT5_MARKS)
    raise ValueError(f"text_split_method {method!r} is unknown; one of {', '.join(METHODS)}")


# -- TextPreprocessor.pre_seg_text ------------------------------------------------------------

def collapse_punctuation(text: str) -> str:
    return re.sub(r"([!?…,.\-])[!?…,.\-]+", r"\1", text)


def _merge_short(pieces: list[str], threshold: int = 5) -> list[str]:
    if len(pieces) < 2:
        return pieces
    out, cur = [], ""
    for p in pieces:
        cur += p
        if len(cur) >= threshold:
            out.append(cur)
            cur = ""
    if cur:
        if out:
            out[-1] += cur
        else:
            out.append(cur)
    return out


def _split_long(text: str, max_len: int = 510) -> list[str]:
    out, cur = [], ""
    for part in re.split("([" + re.escape("".join(sorted(SPLITS))) + "])", text):
        if len(cur + part) > max_len:
            out.append(cur)
            cur = part
        else:
            cur += part
    if cur:
        out.append(cur)
    return out


def pieces(text: str, method: str = "cut5", lang: str = "zh") -> list[str]:
    """The pieces api_v2 synthesises one by one, each ending in a split mark."""
    stop = "." if lang == "en" else "。"
    text = collapse_punctuation(text).strip("\n")
    if not text:
        return []
    first = re.split("[" + re.escape("".join(sorted(SPLITS))) + "]", text)[0].strip()
    if text[0] not in SPLITS and len(first) < 4:
        text = stop + text
    text = cut(text, method)
    while "\n\n" in text:
        text = text.replace("\n\n", "\n")
    parts = text.split("\n")
    if all(p in ("", " ", "\n") for p in parts):
        raise EmptyTextError("Please enter valid text.")  # upstream filter_text's message (its en_US i18n)
    parts = _merge_short([p for p in parts if p not in ("", " ")])
    out = []
    for p in parts:
        if not p.strip() or not re.sub(r"\W+", "", p):
            continue  # blank or only symbols
        if p[-1] not in SPLITS:
            p += stop
        out.extend(_split_long(p) if len(p) > 510 else [p])
    return out
