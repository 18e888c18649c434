"""The GPT-SoVITS v2 phoneme table (732 symbols) and phone -> id lookup.

Reconstructed to be id-compatible with upstream ``GPT_SoVITS/text/symbols2.py``
(RVC-Boss/GPT-SoVITS @48b1a01), whose order is what a v2 checkpoint's
``ar_text_embedding`` / ``enc_p.text_embedding`` rows mean. Upstream builds it as:

    sorted(set(pad + initials + finals x tones 1-5 + Japanese + punctuation/specials + ARPAbet))
    + ["[", "]"] + sorted(Korean jamo + 2 specials) + sorted(Cantonese "Y..." symbols)

The groups below are written from phonology (Mandarin finals, the 39 ARPAbet phones with
stress digits, Jyutping initials/finals with tones 1-6), plus the few irregular members upstream
has; the test pins the length, a hash of the whole list and a few ids.
"""

from __future__ import annotations

from collections.abc import Iterable

PAD = "_"
UNK = "UNK"
# Punctuation the model knows; the frontends map everything else onto these.
PUNCTUATION = ("!", "?", "…", ",", ".", "-")
SPECIALS = ("SP", "SP2", "SP3", UNK)

# Mandarin: initials (with the zero-initial placeholders AA/EE/OO) and toneless finals.
ZH_INITIALS = (
    "AA EE OO b c ch d f g h j k l m n p q r s sh t w x y z zh"
).split()
ZH_FINALS = (
    "E En a ai an ang ao e ei en eng er i i0 ia ian iang iao ie in ing iong ir iu "
    "o ong ou u ua uai uan uang ui un uo v van ve vn"
).split()
ZH_TONES = "12345"  # 5 = neutral

JA_SYMBOLS = (
    "I N U a b by ch cl d dy e f g gy h hy i j k ky m my n ny o p py r ry s sh t ts u v w y z"
).split()

_ARPA_VOWELS = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
_ARPA_CONSONANTS = "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
# Upstream also lists two unstressed vowels, "ER" and "IH" (nothing else is toneless).
ARPABET = frozenset(
    [v + s for v in _ARPA_VOWELS for s in "012"] + _ARPA_CONSONANTS + ["ER", "IH"]
)

KO_SYMBOLS = "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㄲㄸㅃㅆㅉㅏㅓㅗㅜㅡㅣㅐㅔ空停"

# Cantonese (Jyutping) symbols, each "Y" + syllable part + tone; "-" = also without a tone.
# Regular part: the 19 initials (toneless) and the finals with tones 1-6; the irregular members
# (toneless finals, toned stops such as "g1") are as upstream's data-derived set has them.
_YUE_INITIALS = "b c d f g gw h j k kw l m n ng p s t w z".split()
_YUE_TONED = (
    "a:- aa:- aai aak aam aan aang aap aat aau ai:- ak:- am an ang ap at au:- e:- ei ek eng "
    "eoi eon eot g i ik im in ing ip it iu k m n o:- oe oek oeng oi:- ok:- on:- ong ot ou:- "
    "p t u ui uk:- un ung ut yu yun yut"
).split()


def _yue_symbols() -> set[str]:
    out = {"Y" + i for i in _YUE_INITIALS}
    for item in _YUE_TONED:
        base, _, flags = item.partition(":")
        out.update(f"Y{base}{t}" for t in "123456")
        if flags == "-":
            out.add("Y" + base)
    return out


def _build() -> tuple[str, ...]:
    zh_finals = [f + t for t in ZH_TONES for f in ZH_FINALS]
    base = {PAD, *ZH_INITIALS, *zh_finals, *JA_SYMBOLS, *PUNCTUATION, *SPECIALS, *ARPABET}
    table = sorted(base) + ["[", "]"] + sorted(KO_SYMBOLS) + sorted(_yue_symbols())
    return tuple(table)


SYMBOLS: tuple[str, ...] = _build()
SYMBOL_TO_ID: dict[str, int] = {s: i for i, s in enumerate(SYMBOLS)}
VOCAB_SIZE = len(SYMBOLS)  # 732, the T2S checkpoint's phoneme_vocab_size
assert VOCAB_SIZE == 732, VOCAB_SIZE


class UnknownPhoneError(ValueError):
    """A phone that is not in the v2 symbol table."""


def to_ids(phones: Iterable[str]) -> list[int]:
    """Phone symbols -> v2 ids (upstream ``cleaned_text_to_sequence``); unknown phones raise."""
    ids = []
    for i, p in enumerate(phones):
        try:
            ids.append(SYMBOL_TO_ID[p])
        except KeyError:
            raise UnknownPhoneError(
                f"phone {p!r} (position {i}) is not in the GPT-SoVITS v2 symbol table"
            ) from None
    return ids


def from_ids(ids: Iterable[int]) -> list[str]:
    """v2 ids -> phone symbols (for logs and tests)."""
    return [SYMBOLS[i] for i in ids]
