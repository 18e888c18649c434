"""Text splitting as GPT-SoVITS v2's api_v2 does it, and language runs.

``cut(text, method)`` is upstream ``text_segmentation_method.py`` (cut0-cut5, same results);
``pieces(text, method, lang)`` adds ``TextPreprocessor.pre_seg_text``: a leading 。/. when the
first clause is shorter than 4 characters, pieces under 5 characters merged into the previous
ones, a final 。/. where a piece does not end in a split mark, pieces over 510 characters cut
at punctuation, and pieces with no word character dropped.

``language_runs(text, lang)`` replaces upstream's LangSegmenter (``split_lang`` with a
fastText language detector, a downloaded model) with a script-based splitter: Latin letters
are English, hanzi are Chinese, kana and hangul are Japanese/Korean (refused: not supported);
spaces and punctuation stay with the run before them; a run of digits joins a neighbour by
upstream's rules. It cannot tell languages that share a script apart (French is read as
English) and, unlike split_lang, does not split a Latin run on language.
"""

from __future__ import annotations

import re

SUPPORTED_LANGUAGES = ("en", "zh", "all_zh", "auto")
UPSTREAM_ONLY = ("ja", "ko", "yue", "all_ja", "all_ko", "all_yue", "auto_yue")

# Split marks (upstream ``splits``) and cut5's marks.
SPLITS = frozenset("，。？！,.?!~:：—…")
_CUT5_MARKS = frozenset(",.;?!、，。？！;：…")
_PUNCT_ONLY = frozenset("!?…,.- ")  # cut0-cut4: a piece made only of these is dropped
_CLAUSE_END = ",.!?，。！？"
METHODS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")


class UnsupportedLanguageError(ValueError):
    pass


class EmptyTextError(ValueError):
    pass


def check_language(lang: str) -> str:
    if lang not in SUPPORTED_LANGUAGES:
        kind = "is not supported by this server" if lang in UPSTREAM_ONLY else "is unknown"
        raise UnsupportedLanguageError(
            f"text_lang {lang!r} {kind}; supported: {', '.join(SUPPORTED_LANGUAGES)}"
        )
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


# -- language runs ----------------------------------------------------------------------------

def _script(ch: str) -> str:
    if "a" <= ch.lower() <= "z":
        return "en"
    if ch.isdigit() and ch.isascii():
        return "digit"
    o = ord(ch)
    if 0x3040 <= o <= 0x30FF:
        return "ja"
    if 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F or 0xAC00 <= o <= 0xD7AF:
        return "ko"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x323AF or 0xF900 <= o <= 0xFAFF:
        return "zh"
    return ""  # spaces, punctuation, symbols: no language of their own


def _raw_runs(text: str) -> list[list[str]]:
    runs: list[list[str]] = []
    for i, ch in enumerate(text):
        kind = _script(ch)
        # decimal points, thousands separators, ":" and "%" stay inside a number
        if not kind and runs and runs[-1][0] == "digit" and (ch == "%" or (
                ch in ".,:/-" and i + 1 < len(text) and text[i + 1].isdigit())):
            kind = "digit"
        if not kind:
            if runs:
                runs[-1][1] += ch
            else:
                runs.append(["", ch])
            continue
        if runs and (runs[-1][0] == kind or runs[-1][0] == ""):
            runs[-1][0] = kind
            runs[-1][1] += ch
        else:
            runs.append([kind, ch])
    return runs


def _place_digits(runs: list[list[str]]) -> None:
    """Give each digit run a neighbour's language (upstream LangSegmenter's rules)."""
    for i, run in enumerate(runs):
        if run[0] != "digit":
            continue
        prev = runs[i - 1] if i > 0 else None
        nxt = runs[i + 1] if i + 1 < len(runs) else None
        if prev is None:
            run[0] = "zh" if nxt is None or nxt[0] == "digit" else nxt[0]
        elif nxt is None or prev[0] == nxt[0]:
            run[0] = prev[0]
        elif prev[1][-1] in _CLAUSE_END:
            run[0] = nxt[0]
        elif nxt[1][0] in _CLAUSE_END or run[1][-1] in "。.":
            run[0] = prev[0]
        else:
            run[0] = prev[0] if len(prev[1]) >= len(nxt[1]) else nxt[0]


def language_runs(text: str, lang: str) -> list[tuple[str, str]]:
    """(language, text) runs for ``en``/``zh``; raises for unsupported languages."""
    check_language(lang)
    text = re.sub(r" {2,}", " ", text)
    if lang == "en":
        return [("en", text)]
    runs = _raw_runs(text)
    for run in runs:
        if run[0] in ("ja", "ko"):
            if lang == "auto":
                raise UnsupportedLanguageError(
                    f"text_lang 'auto' found {'Japanese' if run[0] == 'ja' else 'Korean'} text "
                    f"({run[1]!r}), which is not supported; supported: {', '.join(SUPPORTED_LANGUAGES)}")
            run[0] = "zh"  # zh/all_zh: the user said Chinese (zh normalisation drops them)
        elif run[0] == "":
            run[0] = "zh" if lang != "auto" else "en" if re.search("[A-Za-z]", run[1]) else "zh"
    if lang == "all_zh":
        for run in runs:
            if run[0] == "digit":
                run[0] = "zh"
    _place_digits(runs)
    merged: list[tuple[str, str]] = []
    for kind, chunk in runs:
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + chunk)
        else:
            merged.append((kind, chunk))
    return merged
