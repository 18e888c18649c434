"""English text normalisation as GPT-SoVITS v2 does it before G2P.

Follows upstream ``text/english.py::text_normalize`` and ``text/en_normalization/expend.py``
rule for rule (own code), including its quirks, because a checkpoint should hear what
upstream would feed it:

* Only ``。！？`` are mapped to ASCII; upstream's other mappings (``;:：，；`` -> ``,`` and quotes
  -> ``'``) never fire (their keys are regex classes that upstream escapes), so those characters
  are simply removed, and ``4:30`` stays a time: "four thirty a.m.".
* ``N. `` (a number, a dot, a space) is read as an ordinal: ``"1. "`` -> ``"first, "``.
* inflect's commas stay in (``3456`` -> "three thousand, four hundred fifty-six") and become
  pause phones.
* Capitals after a letter are split off (``OpenAI`` -> ``Open A I``).

One deliberate difference: a negative number keeps the space before it (upstream drops it,
``is -5`` -> ``isnegative 5``; the G2P's word splitter usually undoes that anyway).
"""

from __future__ import annotations

import functools
import re
import unicodedata

PUNCTUATION = "!?…,.-"  # upstream's v1 punctuation list, used for collapsing runs

_FULLWIDTH = str.maketrans({"。": ".", "！": "!", "？": "?"})

_UNITS = {  # regex alternation order matters (as upstream): "m" is tried before "min"
    "m": ("meter", "meters"), "km": ("kilometer", "kilometers"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "ft": ("feet", "feet"),
    "L": ("liter", "liters"), "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"), "h": ("hour", "hours"), "min": ("minute", "minutes"),
    "s": ("second", "seconds"), "°C": ("degree celsius", "degrees celsius"),
    "°F": ("degree fahrenheit", "degrees fahrenheit"),
}

_NUMBER_DOT = re.compile(r"\b([0-9]+)\. ")
_OPERAND = r"(?:-?\d+(?:\.\d+)?[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*|\.\d+[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*|[A-Za-z][⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*)"
_ARITHMETIC = re.compile(rf"({_OPERAND})\s+([+\-×÷=])\s+({_OPERAND})")
_OPERATORS = {"+": " plus ", "-": " minus ", "×": " times ", "÷": " divided by ", "=": " Equals "}
_NEGATIVE = re.compile(r"(^|\s)-(\d+)")
_THOUSANDS = re.compile(r"([0-9][0-9,]+[0-9])")
_TIME = re.compile(r"\b([01]?[0-9]|2[0-3]):([0-5][0-9])\b")
_MEASURE = re.compile(r"\b([0-9]+(\.[0-9]+)?(" + "|".join(map(re.escape, _UNITS)) + r"))\b")
_MONEY = [  # (pattern, singular, plural, sub-unit singular, plural)
    (re.compile(r"£([0-9.,]*[0-9]+)"), "pound", "pounds", "penny", "pence"),
    (re.compile(r"([0-9.,]*[0-9]+)£"), "pound", "pounds", "penny", "pence"),
    (re.compile(r"\$([0-9.,]*[0-9]+)"), "dollar", "dollars", "cent", "cents"),
    (re.compile(r"([(0-9.,]*[0-9]+)\$"), "dollar", "dollars", "cent", "cents"),
]
_DECIMAL = re.compile(r"([0-9]+\.\s*[0-9]+)")
_FRACTION = re.compile(r"([0-9]+/[0-9]+)")
_ORDINAL = re.compile(r"[0-9]+(st|nd|rd|th)")
_NUMBER = re.compile(r"[0-9]+")


@functools.lru_cache(maxsize=1)
def _engine():
    import inflect  # slow to import (~2 s): only when English is first normalised

    return inflect.engine()


def _words(n, **kw) -> str:
    return _engine().number_to_words(n, **kw)


def _time(m: re.Match) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    period = "a.m." if hours < 12 else "p.m."
    hours = hours - 12 if hours > 12 else hours
    if minutes == 0:
        return f"{_words(hours)} o'clock {period}"
    return f"{_words(hours)} {_words(minutes)} {period}"


def _measure(m: re.Match) -> str:
    whole, decimals, unit = m.group(1), m.group(2), m.group(3)
    value = int(whole.replace(unit, "").replace(".", ""))
    singular = decimals is None and value == 1
    return whole.replace(unit, " " + _UNITS[unit][0 if singular else 1])


def _money(units: tuple[str, str, str, str]):
    one, many, sub_one, sub_many = units

    def expand(m: re.Match) -> str:
        amount = m.group(1)
        parts = amount.split(".")
        # upstream also gives up on "1.2.3"; it crashes on stray commas ("$,5"): read them as is
        if len(parts) > 2 or not all(p.isdigit() for p in parts if p):
            return f"{amount} {many}"
        main = int(parts[0]) if parts[0] else 0
        # "6.2" is six and twenty: the fraction is padded to two digits, as upstream
        sub = int(parts[1].ljust(2, "0")) if len(parts) > 1 and parts[1] else 0
        main_w = f"{main} {one if main == 1 else many}"
        sub_w = f"{sub} {sub_one if sub == 1 else sub_many}"
        if main and sub:
            return f"{main_w} and {sub_w}"
        if main:
            return main_w
        if sub:
            return sub_w
        return f"zero {many}"

    return expand


def _decimal(m: re.Match) -> str:
    whole, frac = m.group(1).split(".")
    return whole + " point " + " ".join(frac)


def _fraction(m: re.Match) -> str:
    num, den = (int(x) for x in m.group(0).split("/"))
    head = _words(num)
    if den == 1:
        return head
    if den == 2:
        return f"{head} {'half' if num == 1 else 'halves'}"
    tail = _engine().ordinal(_words(den)) + ("s" if num > 1 else "")
    return f"{head} {tail}"


def _number(m: re.Match) -> str:
    n = int(m.group(0))
    if 1000 < n < 3000:  # read like a year
        if n == 2000:
            return "two thousand"
        if 2000 < n < 2010:
            return "two thousand " + _words(n % 100)
        if n % 100 == 0:
            return _words(n // 100) + " hundred"
        return _words(n, andword="", zero="oh", group=2).replace(", ", " ")
    return _words(n, andword="")


def expand(text: str) -> str:
    """Upstream ``en_normalization.expend.normalize``: numbers, money, units -> words."""
    text = _NUMBER_DOT.sub(lambda m: _engine().ordinal(m.group(1)) + ", ", text)
    while _ARITHMETIC.search(text):
        text = _ARITHMETIC.sub(lambda m: m.group(1) + _OPERATORS[m.group(2)] + m.group(3), text)
    text = _NEGATIVE.sub(lambda m: f"{m.group(1)}negative {m.group(2)}", text)
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _TIME.sub(_time, text)
    text = _MEASURE.sub(_measure, text)
    for pattern, one, many, sub_one, sub_many in _MONEY:
        text = pattern.sub(_money((one, many, sub_one, sub_many)), text)
    text = _DECIMAL.sub(_decimal, text)
    text = _FRACTION.sub(_fraction, text)
    text = _ORDINAL.sub(lambda m: _words(m.group(0)), text)
    text = _NUMBER.sub(_number, text)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    text = text.replace("%", " percent")
    text = re.sub(r"[^ A-Za-z'.,?!\-]", "", text)
    text = re.sub(r"(?i)i\.e\.", "that is", text)
    text = re.sub(r"(?i)e\.g\.", "for example", text)
    # a capital inside a word starts a new one: "OpenAI" -> "Open A I"
    return re.sub(r"(?<!^)(?<!\s)([A-Z])", r" \1", text)


def collapse_punctuation(text: str, after_space: bool = True) -> str:
    """Keep the first of a run of punctuation (and drop punctuation right after a space)."""
    p = re.escape(PUNCTUATION)
    lead = rf"[{p}\s]" if after_space else rf"[{p}]"
    return re.sub(rf"({lead})[{p}]+", r"\1", text)


def normalize(text: str) -> str:
    """Upstream ``english.text_normalize``."""
    return collapse_punctuation(expand(text.translate(_FULLWIDTH)))
