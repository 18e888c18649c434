"""Chinese text normalisation as GPT-SoVITS v2 does it (upstream ``chinese2.text_normalize``).

Upstream runs PaddleSpeech's ``TextNormalizer`` (dates, times, phone numbers, units, numbers
-> hanzi), then maps punctuation to the model's set and drops everything that is neither a
hanzi (U+4E00-U+9FA5) nor one of ``!?…,.-``. The rules are applied here in the same order and
with the same readings (own code); notably a bare number of 3+ digits is read digit by digit
with 幺 ("110" -> 幺幺零) unless a measure word follows ("110个" -> 一百一十个), and 2 before a
measure word is 两.

Numbers are read by our own small verbaliser, not cn2an: cn2an differs from upstream's
readings in places (it drops the 零 in 3,000,400,007,740 -> ...亿零七千..., and keeps trailing
decimal zeros: 12.000 -> 十二点零零零 where upstream says 十二点零).

Traditional -> simplified is upstream's own character table where the zh-normalization package
(which ships it) is installed, as the gpt-sovits extra installs it; otherwise OpenCC's ``t2s``
(rare characters then differ). Differences: the measure-word list is ours (common classifiers
and units); in a time range the second minute is read as written (upstream reads "8:30-9:45" as 八点半至九点半, a bug).
"""

from __future__ import annotations

import functools
import importlib
import re
import string
from collections.abc import Callable

import opencc

PUNCTUATION = "!?…,.-"
_DIGITS = "零一二三四五六七八九"
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ", "0123456789xyn")
_SUP = "[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]"

# Measure words and units after which a number is a quantity (read as a cardinal, 2 as 两).
# Only whether the text after the number starts with one of these matters; the set is the one
# upstream's (PaddleSpeech's) quantifier pattern accepts, regrouped, so numbers read the same
# (e.g. "2次" stays 二次 and "007号" 零零七号: neither 次 nor 号 is in it).
_MEASURE_CHARS = (
    "个只条张本位名人口头匹件双对套把根支枝棵株朵片块颗粒丸泡幢栋座间层户家所台辆架艘列项例枚尾"  # things
    "篇页课首阙曲段幅封注批群堆叠撮捆扎担挑贯令刀打罗手身脚跳袭场回趟阵出队单客堂线针贴管网炮道面顶处"  # more
    "杯瓶盒袋箱桶罐壶盆盘碗碟锅篮箩笼钵煲盏簋斛卮啖勺斗升合石"  # containers and capacity
    "年月日天周季旬刻时秒分钟夜更代辈世纪岁春夏秋冬伏"  # time
    "米厘毫丝忽寸尺丈里寻常亩平方斤两钱铢钧锱吨程铺"  # length, area, weight
    "元角毛万亿千百"  # money and large numbers
    "丘山岭坡江溪墙堵床目窠砣腔壳板"  # upstream's odd ones
)
_MEASURE_WORDS = ("公分", "十吨", "小时", "微克", "微米", "美元")
_QUANTIFIER = "(" + "|".join(_MEASURE_WORDS) + "|[" + _MEASURE_CHARS + "])"

_UNITS = (  # replaced in this order, as plain substrings (so "mm" becomes 米米, as upstream)
    ("cm2", "平方厘米"), ("cm²", "平方厘米"), ("cm3", "立方厘米"), ("cm³", "立方厘米"),
    ("cm", "厘米"), ("db", "分贝"), ("ds", "毫秒"), ("kg", "千克"), ("km", "千米"),
    ("m2", "平方米"), ("m²", "平方米"), ("m³", "立方米"), ("m3", "立方米"), ("ml", "毫升"),
    ("m", "米"), ("mm", "毫米"), ("s", "秒"),
)
_GREEK = {
    "α": "阿尔法", "β": "贝塔", "γ": "伽玛", "Γ": "伽玛", "δ": "德尔塔", "Δ": "德尔塔", "ε": "艾普西龙",
    "ζ": "捷塔", "η": "依塔", "θ": "西塔", "Θ": "西塔", "ι": "艾欧塔", "κ": "喀帕", "λ": "拉姆达",
    "Λ": "拉姆达", "μ": "缪", "ν": "拗", "ξ": "克西", "Ξ": "克西", "ο": "欧米克伦", "π": "派", "Π": "派",
    "ρ": "肉", "ς": "西格玛", "Σ": "西格玛", "σ": "西格玛", "τ": "套", "υ": "宇普西龙", "φ": "服艾",
    "Φ": "服艾", "χ": "器", "ψ": "普赛", "Ψ": "普赛", "ω": "欧米伽", "Ω": "欧米伽",
}
_POST = str.maketrans({"/": "每", **{c: _DIGITS[i + 1] if i < 9 else "十" for i, c in enumerate("①②③④⑤⑥⑦⑧⑨⑩")},
                       "+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等"})
_FULL_TO_HALF = {ord(c) + 0xFEE0: ord(c) for c in string.ascii_letters + string.digits} | {0x3000: 0x20}
# punctuation -> the model's set (upstream chinese2.rep_map); 嗯/呣 have no usable reading
_PUNCT_MAP = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",",
              "、": ",", "...": "…", "$": ".", "/": ",", "—": "-", "~": "…", "～": "…",
              "嗯": "恩", "呣": "母"}
_PUNCT_RE = re.compile("|".join(map(re.escape, sorted(_PUNCT_MAP, key=len, reverse=True))))


# -- number readings -------------------------------------------------------------------------

def digits(s: str, alt_one: bool = False) -> str:
    """Digit by digit; 幺 for 1 in codes and phone numbers."""
    out = "".join(_DIGITS[int(c)] for c in s)
    return out.replace("一", "幺") if alt_one else out


def _cardinal_parts(s: str, zero_before: bool = True) -> str:
    body = s.lstrip("0")
    if not body:
        return ""
    if len(body) == 1:
        return ("零" if zero_before and len(body) < len(s) else "") + _DIGITS[int(body)]
    power = next(p for p in (8, 4, 3, 2, 1) if p < len(body))
    head, tail = s[:-power], s[-power:]
    return _cardinal_parts(head) + "十百千万亿"[(1, 2, 3, 4, 8).index(power)] + _cardinal_parts(tail)


def cardinal(s: str) -> str:
    """"1010" -> 一千零一十; a leading 一十 is shortened to 十."""
    s = s.lstrip("0")
    if not s:
        return "零"
    out = _cardinal_parts(s)
    return out[1:] if out.startswith("一十") else out


def number(s: str) -> str:
    """An unsigned number with an optional decimal part ("3.50" -> 三点五零, ".5" -> 零点五)."""
    whole, _, frac = s.partition(".")
    out = cardinal(whole) if whole else ""
    frac = frac.rstrip("0") + "0" if frac.endswith("0") else frac
    if frac:
        out = (out or "零") + "点" + digits(frac)
    return out


def _quantity(value: str) -> str:
    n = number(value)
    return "两" if n == "二" else n  # 2 before a measure word


def _signed(sign: str, value: str, negative: str = "负") -> str:
    return (negative if sign else "") + number(value)


# -- rules, in upstream's order --------------------------------------------------------------

def _date(m: re.Match) -> str:
    year, month, day, suffix = m.group(1), m.group(3), m.group(5), m.group(9)
    out = digits(year) + "年"
    out += cardinal(month) + "月" if month else ""
    out += cardinal(day) + suffix if day else ""
    return out


def _clock(hour: str, minute: str, second: str | None) -> str:
    def two(v: str) -> str:  # "05" -> 零五
        return ("零" if v.startswith("0") else "") + number(v.lstrip("0"))
    out = number(hour) + "点"
    if minute.lstrip("0"):
        out += "半" if int(minute) == 30 else two(minute) + "分"
    if second and second.lstrip("0"):
        out += two(second) + "秒"
    return out


_CLOCK = r"([0-1]?[0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9]))?"
_NUM = r"((-?)((\d+)(\.\d+)?))"
_ANY_NUM = r"((-?)((\d+)(\.\d+)?)|(\.(\d+)))"
_TO_UNITS = r"(%|°C|℃|度|摄氏度|cm2|cm²|cm3|cm³|cm|db|ds|kg|km|m2|m²|m³|m3|ml|m|mm|s)"
_OPERAND = rf"((-?)((\d+)(\.\d+)?{_SUP}*)|(\.\d+{_SUP}*)|([A-Za-z]{_SUP}*))"


_RULES: list[tuple[re.Pattern, object]] = [
    (re.compile(r"(\d{4}|\d{2})年((0?[1-9]|1[0-2])月)?(((0?[1-9])|((1|2)[0-9])|30|31)([日号]))?"), _date),
    (re.compile(r"(\d{4})([- /.])(0[1-9]|1[012])\2(0[1-9]|[12][0-9]|3[01])"),
     lambda m: f"{digits(m.group(1))}年{cardinal(m.group(3))}月{cardinal(m.group(4))}日"),
    (re.compile(_CLOCK + r"(~|-)" + _CLOCK),
     lambda m: _clock(m.group(1), m.group(2), m.group(4)) + "至" + _clock(m.group(6), m.group(7), m.group(9))),
    (re.compile(_CLOCK), lambda m: _clock(m.group(1), m.group(2), m.group(4))),
    (re.compile(_ANY_NUM + _TO_UNITS + "~" + _ANY_NUM + _TO_UNITS), lambda m: m.group(0).replace("~", "至")),
    (re.compile(r"(-?)(\d+(\.\d+)?)(°C|℃|度|摄氏度)"),
     lambda m: _signed(m.group(1), m.group(2), "零下") + ("摄氏度" if m.group(4) == "摄氏度" else "度")),
]
_ARITHMETIC = re.compile(_OPERAND + r"([+\-×÷=])" + _OPERAND)
_OPERATORS = {"+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等于"}
_RULES_AFTER_ARITHMETIC: list[tuple[re.Pattern, object]] = [
    (re.compile(_SUP + "+"), lambda m: "的" + m.group(0).translate(_SUPERSCRIPTS) + "次方"),
    (re.compile(r"(-?)(\d+)/(\d+)"),
     lambda m: ("负" if m.group(1) else "") + f"{number(m.group(3))}分之{number(m.group(2))}"),
    (re.compile(r"(-?)(\d+(\.\d+)?)%"), lambda m: ("负" if m.group(1) else "") + "百分之" + number(m.group(2))),
    (re.compile(r"(?<!\d)((\+?86 ?)?1([38]\d|5[0-35-9]|7[678]|9[89])\d{8})(?!\d)"),
     lambda m: "，".join(digits(p, alt_one=True) for p in m.group(0).strip("+").split())),
    (re.compile(r"(?<!\d)((0(10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7})(?!\d)"),
     lambda m: "，".join(digits(p, alt_one=True) for p in m.group(0).split("-"))),
    (re.compile(r"(400)(-)?\d{3}(-)?\d{4}"),
     lambda m: "，".join(digits(p, alt_one=True) for p in m.group(0).split("-"))),
    (re.compile(r"(?<![\d+\-×÷=])" + _NUM + "[-~]" + _NUM + r"(?![\d+\-×÷=])"),
     lambda m: f"{_signed(m.group(2), m.group(3))}到{_signed(m.group(7), m.group(8))}"),
    (re.compile(r"(-)(\d+)"), lambda m: "负" + number(m.group(2))),
    (re.compile(r"((\d+)(\.\d+)(\.\d+)?(\.\d+)+)"),
     lambda m: "".join("点" if c == "." else number(c) for c in m.group(1))),
    (re.compile(r"(-?)((\d+)(\.\d+))|(\.(\d+))"),
     lambda m: number(m.group(5)) if m.group(5) else _signed(m.group(1), m.group(2))),
    (re.compile(r"(\d+)([多余几+])?" + _QUANTIFIER),
     lambda m: _quantity(m.group(1)) + {"+": "多", None: ""}.get(m.group(2), m.group(2)) + m.group(3)),
    (re.compile(r"\d{3}\d*"), lambda m: digits(m.group(0), alt_one=True)),
    (re.compile(r"(-?)((\d+)(\.\d+)?)|(\.(\d+))"),
     lambda m: number(m.group(5)) if m.group(5) else _signed(m.group(1), m.group(2))),
]


def upstream_t2s() -> Callable[[str], str] | None:
    """Upstream's table (PaddleSpeech's), as the zh-normalization package ships it, if installed."""
    try:
        table: dict[str, str] = importlib.import_module("zh_normalization.char_convert").t2s_dict
    except ImportError:
        return None
    return lambda text: "".join(table.get(c, c) for c in text)


@functools.lru_cache(maxsize=1)
def _t2s() -> Callable[[str], str]:
    return upstream_t2s() or opencc.OpenCC("t2s").convert


def split_sentences(text: str) -> list[str]:
    """Upstream TextNormalizer._split: drop spaces and brackets/quotes, cut after punctuation."""
    text = text.replace(" ", "")
    text = re.sub(r"[—《》【】<>{}()（）#&@“”^_|\\]", "", text)
    text = re.sub(r"([：、，；。？！,;?!][”’]?)", r"\1\n", text).strip()
    return [s.strip() for s in re.split(r"\n+", text)]


def verbalize(sentence: str, t2s: Callable[[str], str] | None = None) -> str:
    """Upstream TextNormalizer.normalize_sentence: numbers, dates, units... -> hanzi.

    ``t2s`` replaces the traditional -> simplified step (default: upstream's table, else OpenCC); the
    Cantonese frontend passes its own, character by character as upstream converts.
    """
    s = (t2s or _t2s())(sentence).translate(_FULL_TO_HALF)
    for pattern, repl in _RULES:
        s = pattern.sub(repl, s)
    for unit, word in _UNITS:
        s = s.replace(unit, word)
    while _ARITHMETIC.search(s):
        s = _ARITHMETIC.sub(lambda m: m.group(1) + _OPERATORS[m.group(8)] + m.group(9), s)
    for pattern, repl in _RULES_AFTER_ARITHMETIC:
        s = pattern.sub(repl, s)
    for greek, word in _GREEK.items():
        s = s.replace(greek, word)
    s = s.translate(_POST)
    return re.sub(r"[-—《》【】<=>{}()（）#&@“”^_|\\]", "", s)


def map_punctuation(text: str) -> str:
    """Punctuation -> the model's set; keep only hanzi and that set."""
    text = _PUNCT_RE.sub(lambda m: _PUNCT_MAP[m.group(0)], text)
    return re.sub(r"[^\u4e00-\u9fa5" + re.escape(PUNCTUATION) + "]+", "", text)


def collapse_punctuation(text: str) -> str:
    p = re.escape(PUNCTUATION)
    return re.sub(rf"([{p}])[{p}]+", r"\1", text)


def normalize(text: str) -> str:
    """Raw Chinese text -> the normalised text whose every character gets phones."""
    return collapse_punctuation("".join(map_punctuation(verbalize(s)) for s in split_sentences(text)))
