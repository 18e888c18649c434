"""Japanese G2P for GPT-SoVITS v2 (upstream ``text/japanese.py`` as ``clean_text(text, "ja", "v2")``
calls it): text -> (v2 phone symbols, normalised text).

As upstream:

* Normalisation only collapses a run of the model's punctuation (``!?…,.-``) to its first mark.
* Full-width ``％`` is read パーセント (ASCII ``%`` is not); the text is lower-cased, then cut
  into runs of "Japanese" characters (kana, CJK ideographs, ``々``, ASCII and full-width letters,
  digits, half-width katakana) and single other characters.
* Each run goes through OpenJTalk (pyopenjtalk's frontend + full-context labels); its phonemes
  come with the prosody marks of ESPnet's ``pyopenjtalk_g2p_prosody``: ``[`` pitch rise,
  ``]`` pitch fall, ``#`` accent-phrase border (not a v2 symbol: it becomes ``UNK``, as upstream),
  ``_`` pause; unvoiced vowels are written as voiced ones.
* Any other character is kept as a phone (an ASCII space is dropped); full-width ``、。！？：；，``,
  ``·`` and newline map to ``, . ! ? , , , , .``; whatever is then not a v2 symbol is ``UNK``.

Differences from upstream, and why:

* OpenJTalk is the ``pyopenjtalk-plus`` package (its bundled, improved dictionary; nothing is
  downloaded), for upstream's fixtures too; upstream's requirements name the original
  ``pyopenjtalk``, whose dictionary is downloaded at first use and reads some words differently.
  pyopenjtalk-plus reads 何 with an ONNX model when ``onnxruntime`` is installed; without it
  何人/何時/何と/何名 read なに (a warning is logged).
* Upstream's user dictionary (``ja_userdic/userdict.csv``) is not shipped: at 48b1a01 it is a
  ~17 MB list of English words in katakana (its commit: "japanese cmudict-katakana dict"), so
  English words inside Japanese text are spelled out letter by letter here (OpenJTalk's own
  reading) where upstream may read them as words; its first, one-line version only read 主殿 as
  アルジドノ. ``load(user_dict_csv=...)`` takes such a MeCab CSV and compiles it once into a
  cache directory (keyed by its MD5, as upstream recompiles on a changed MD5). OpenJTalk's user
  dictionary is process-global.
* A ``sil`` label inside a run (upstream asserts there is none) is skipped instead of failing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pyopenjtalk

from .segment import collapse_punctuation
from .symbols import SYMBOL_TO_ID, UNK

# What upstream treats as Japanese text (everything else is a mark): ASCII letters and digits
# (any Unicode digit, as Python's \d), 々, hiragana + katakana, CJK ideographs, full-width
# 1-9 A-Z a-z, half-width katakana.
_JA_CLASS = r"A-Za-z\d\u3005\u3040-\u30ff\u4e00-\u9fff\uff11-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9d"
_PIECE = re.compile(f"([{_JA_CLASS}]+)|([^{_JA_CLASS}])")

_MARK_MAP = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",",
             "、": ","}

# Full-context label fields (HTS format), read as ESPnet's prosody recipe reads them; a field
# that is "xx" reads as -50.
_P3 = re.compile(r"-(.*?)\+")
_A1 = re.compile(r"/A:([0-9\-]+)\+")
_A2 = re.compile(r"\+(\d+)\+")
_A3 = re.compile(r"\+(\d+)/")
_F1 = re.compile(r"/F:(\d+)_")
_E3 = re.compile(r"!(\d+)_")
_MISSING = -50

_UNVOICED = {"A": "a", "E": "e", "I": "i", "O": "o", "U": "u"}
_BORDER_AFTER = frozenset("a e i o u A E I O U N cl".split())  # phones an accent phrase can end on


def _feature(pattern: re.Pattern[str], label: str) -> int:
    m = pattern.search(label)
    return int(m.group(1)) if m else _MISSING


def _prosody_mark(label: str, next_label: str, phone: str) -> str | None:
    """The mark after ``phone``: accent-phrase border, pitch fall or pitch rise (or none)."""
    a1, a2, a3 = _feature(_A1, label), _feature(_A2, label), _feature(_A3, label)
    a2_next = _feature(_A2, next_label)
    if a3 == 1 and a2_next == 1 and phone in _BORDER_AFTER:
        return "#"
    if a1 == 0 and a2_next == a2 + 1 and a2 != _feature(_F1, label):
        return "]"
    if a2 == 1 and a2_next == 2:
        return "["
    return None


def labels_to_phones(labels: list[str]) -> list[str]:
    """Phonemes with prosody marks from OpenJTalk labels, without the leading/trailing silence."""
    out: list[str] = []
    last = len(labels) - 1
    for n, label in enumerate(labels):
        m = _P3.search(label)
        phone = m.group(1) if m else ""
        phone = _UNVOICED.get(phone, phone)
        if phone == "sil":
            if n == 0:
                out.append("^")
            elif n == last:
                # "$", or "?" for a question; then the last item is dropped whatever it is (as
                # upstream: were the flag missing, that would be the run's last real phone).
                e3 = _feature(_E3, label)
                if e3 in (0, 1):
                    out.append("$" if e3 == 0 else "?")
            continue
        if phone == "pau":
            out.append("_")
            continue
        out.append(phone)
        mark = _prosody_mark(label, labels[n + 1], phone) if n < last else None
        if mark is not None:
            out.append(mark)
    return out[1:-1]


def normalize(text: str) -> str:
    """Upstream's ``text_normalize``: a run of punctuation marks becomes its first mark."""
    return collapse_punctuation(text)  # the same rule as upstream's pre_seg_text


@dataclass
class JapaneseG2P:
    """OpenJTalk, initialised (and with a user dictionary, if one was given)."""

    user_dict: Path | None = None

    def run_phones(self, run: str) -> list[str]:
        """Phones for one run of Japanese characters."""
        return labels_to_phones(pyopenjtalk.make_label(pyopenjtalk.run_frontend(run)))

    def phones(self, norm_text: str) -> list[str]:
        """Raw phones (before the v2 filter) for normalised text, as upstream's ``g2p``."""
        out: list[str] = []
        text = norm_text.replace("％", "パーセント").lower()  # the one symbol upstream spells out
        for m in _PIECE.finditer(text):
            run, mark = m.group(1), m.group(2)
            if run is not None:
                out += self.run_phones(run)
            elif mark != " ":
                out.append(_MARK_MAP.get(mark, mark))
        return out


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stream_server" / "gpt_sovits_ja"


def compile_user_dict(csv_path: Path, cache_dir: Path | None = None) -> Path:
    """The compiled MeCab dictionary for ``csv_path``, built on first use (keyed by its MD5)."""
    digest = hashlib.md5(csv_path.read_bytes()).hexdigest()
    out_dir = cache_dir or _cache_dir()
    target = out_dir / f"user-{digest}.dic"
    if not target.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / f".user-{digest}.{os.getpid()}.tmp"
        pyopenjtalk.mecab_dict_index(str(csv_path), str(tmp))
        if not tmp.exists():
            raise ValueError(f"no valid user dictionary entries in {csv_path}")
        tmp.replace(target)  # atomic: another process may be compiling the same CSV
    return target


_init_lock = threading.Lock()
log = logging.getLogger(__name__)


def load(user_dict_csv: str | Path | None = None, cache_dir: Path | None = None) -> JapaneseG2P:
    """OpenJTalk ready (its dictionary loads on first use), plus an optional user dictionary
    (a MeCab CSV such as upstream's ``userdict.csv``; it applies process-wide)."""
    if importlib.util.find_spec("onnxruntime") is None:
        # Without it pyopenjtalk-plus reads some 何 as なに (何人 -> なにニン), unlike upstream.
        log.warning("onnxruntime is not installed: Japanese 何 readings will differ from upstream")
    with _init_lock:
        compiled = None
        if user_dict_csv is not None:
            compiled = compile_user_dict(Path(user_dict_csv), cache_dir)
            pyopenjtalk.update_global_jtalk_with_user_dict(str(compiled))
        pyopenjtalk.run_frontend("あ")  # loads the system dictionary now, not on the first request
    return JapaneseG2P(user_dict=compiled)


def g2p(text: str, g: JapaneseG2P) -> tuple[list[str], str]:
    """(v2 phone symbols, normalised text), as upstream ``clean_text(text, "ja", "v2")``."""
    norm_text = normalize(text)
    phones = [p if p in SYMBOL_TO_ID else UNK for p in g.phones(norm_text)]
    return phones, norm_text
