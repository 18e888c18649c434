"""Text -> Piper phoneme ids through the espeak-ng bridge shipped in the piper-tts wheel.

Piper's id convention (``piper/phoneme_ids.py``): ``^`` (BOS), ``_`` (pad), then every phoneme
followed by ``_``, and finally ``$`` (EOS).  Phonemes missing from the voice's map are skipped.
espeak splits text into sentences; we join them into one list, separated by a space phoneme,
so one call always yields one id sequence.
"""

from __future__ import annotations

import json
import logging
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path

_LOG = logging.getLogger(__name__)

BOS, EOS, PAD, WORD_GAP = "^", "$", "_", " "

# The bridge keeps global espeak state (current voice, buffers): one user at a time.
_ESPEAK_LOCK = threading.Lock()
_espeak = None


def _espeak_phonemizer():
    global _espeak
    if _espeak is None:
        from piper.phonemize_espeak import EspeakPhonemizer

        _espeak = EspeakPhonemizer()
    return _espeak


def espeak_phoneme_count(text: str, espeak_voice: str) -> int:
    """How many phonemes espeak-ng makes of `text` (code points, as Phonemizer.sentences gives
    them): how much speech a text expands to ("1e999999" is some 35 phonemes, "Hello" 5), measured
    before a voice is asked to speak it (server/sentence_cost.py). About a millisecond for 400
    characters; the bridge holds the GIL meanwhile."""
    with _ESPEAK_LOCK:
        groups = _espeak_phonemizer().phonemize(espeak_voice, text)
    return sum(len(group) for group in groups)


class Phonemizer:
    def __init__(
        self,
        phoneme_id_map: Mapping[str, Sequence[int]],
        espeak_voice: str = "en-us",
        phoneme_type: str = "espeak",
        vowel_clusters: AbstractSet[tuple[str, ...]] | None = None,
    ):
        self.id_map = {k: list(v) for k, v in phoneme_id_map.items()}
        self.espeak_voice = espeak_voice
        if phoneme_type not in ("espeak", "text"):
            raise ValueError(f"phoneme_type {phoneme_type!r} is not supported (espeak or text)")
        self.phoneme_type = phoneme_type
        self.vowel_clusters = set(vowel_clusters) if vowel_clusters else None  # merged as piper-tts does
        for symbol in (BOS, EOS, PAD):
            if symbol not in self.id_map:
                raise ValueError(f"phoneme_id_map lacks {symbol!r}")

    @classmethod
    def from_config(cls, config: Mapping | str | Path) -> Phonemizer:
        data = config if isinstance(config, Mapping) else json.loads(Path(config).read_text(encoding="utf-8"))
        clusters = data.get("vowel_clusters")
        return cls(
            data["phoneme_id_map"],
            data.get("espeak", {}).get("voice", "en-us"),
            data.get("phoneme_type", "espeak"),
            {tuple(c) for c in clusters} if clusters else None,
        )

    def sentences(self, text: str) -> list[list[str]]:
        """Phonemes (NFD code points, punctuation kept) per sentence as espeak splits them; a
        "text" voice's phonemes are the text's own NFD code points, in one sentence."""
        if self.phoneme_type == "text":
            return [list(unicodedata.normalize("NFD", text))] if text else []
        with _ESPEAK_LOCK:
            groups = _espeak_phonemizer().phonemize(self.espeak_voice, text, vowel_clusters=self.vowel_clusters)
        return [g for g in groups if g]

    def check(self) -> None:
        """Fail now, not on every sentence, if espeak-ng does not know the voice's espeak voice."""
        try:
            self.sentences("a")
        except RuntimeError as exc:  # the bridge: "Failed to set voice: ..."
            raise ValueError(f"espeak-ng cannot speak with espeak voice {self.espeak_voice!r}: {exc}") from None

    def phonemes(self, text: str) -> list[str]:
        joined: list[str] = []
        for group in self.sentences(text):
            if joined and joined[-1] != WORD_GAP:
                joined.append(WORD_GAP)
            joined.extend(group)
        return joined

    def _word_id_sets(self) -> tuple[set[int], set[int]]:
        """(ids of the space phoneme, ids that sound no word: BOS/EOS/pad and punctuation)."""
        cached = getattr(self, "_word_ids", None)
        if cached is None:
            cached = self._word_ids = self._compute_word_id_sets()
        return cached

    def _compute_word_id_sets(self) -> tuple[set[int], set[int]]:
        gap = set(self.id_map.get(WORD_GAP, []))
        silent = set(self.id_map[BOS] + self.id_map[EOS] + self.id_map[PAD])
        for symbol, ids in self.id_map.items():
            if symbol and all(unicodedata.category(c).startswith("P") for c in symbol):
                silent.update(ids)
        return gap, silent - gap

    def word_frames(self, phoneme_ids: Sequence[int], durations: Sequence[int]) -> list[tuple[int, int]]:
        """(start, end) frame per spoken word group of an id sequence, from per-id durations."""
        gap, silent = self._word_id_sets()
        words: list[tuple[int, int]] = []
        start: int | None = None  # the word group in progress (None: none)
        end = 0
        t = 0
        for pid, d in zip(phoneme_ids, durations):
            d = int(d)
            if pid in gap:
                if start is not None:
                    words.append((start, end))
                start = None
            elif pid not in silent:
                if start is None:
                    start = t
                end = t + d
            t += d
        if start is not None:
            words.append((start, end))
        return words

    def ids_from_phonemes(self, phonemes: Sequence[str]) -> list[int]:
        pad = self.id_map[PAD]
        ids = self.id_map[BOS] + pad
        for p in phonemes:
            if p not in self.id_map:
                _LOG.warning("phoneme %r not in the voice's map, skipped", p)
                continue
            ids += self.id_map[p] + pad
        return ids + self.id_map[EOS]

    def __call__(self, text: str) -> list[int]:
        return self.ids_from_phonemes(self.phonemes(text))
