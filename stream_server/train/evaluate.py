"""Held-out evaluation of the AR voice against its teacher with the Whisper judge.

Per sentence: the teacher (torch VITS, prior at its mean) and the AR student on
the same conditioning (same durations, so the same frame count by construction),
both through the teacher's HiFi-GAN decoder; Whisper transcribes each. Reports
word errors, the student/teacher length ratio and loudness ratio (RMS), and
flags silent or runaway output.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..intelligibility import WhisperJudge, word_errors
from ..models.ar_latent.ar_acoustic import ArAcousticModel
from ..models.ar_latent.ar_slots import decode_offline
from ..models.piper_vits.piper_voice import PiperVoice, SynthesisParams
from .dataset import teacher_pair

EVAL_PARAMS = SynthesisParams(noise_scale=0.0, length_scale=1.0, noise_w=0.0, seed=0)


@dataclass
class SentenceResult:
    text: str
    words: int
    teacher_errors: int
    student_errors: int
    teacher_heard: str
    student_heard: str
    length_ratio: float  # student samples / teacher samples
    rms_ratio: float  # student RMS / teacher RMS (silence or blow-up shows here)


@dataclass
class EvalSummary:
    sentences: int
    words: int
    teacher_wer: float
    student_wer: float
    length_within_5pct: float  # fraction of sentences
    min_rms_ratio: float
    max_rms_ratio: float


def synthesize_pair(
    voice: PiperVoice, model: ArAcousticModel, texts: list[str], params: SynthesisParams = EVAL_PARAMS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(teacher audio, student audio) float32 per text; the student decodes all texts as one batch,
    from the same conditioning the teacher's latents (its training targets) come from."""
    pairs = [teacher_pair(voice, t, params) for t in texts]  # (cond [C, F], teacher z [D, F])
    student_z = decode_offline(model, [cond for cond, _ in pairs])
    return [
        (voice.decode(teacher_z[None])[0].numpy(), voice.decode(z[None])[0].numpy())
        for (_, teacher_z), z in zip(pairs, student_z)
    ]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def evaluate(
    voice: PiperVoice, model: ArAcousticModel, judge: WhisperJudge, texts: list[str]
) -> tuple[list[SentenceResult], EvalSummary]:
    rows = []
    for text, (teacher, student) in zip(texts, synthesize_pair(voice, model, texts)):
        t = word_errors(text, judge.transcribe(teacher, voice.sample_rate))
        s = word_errors(text, judge.transcribe(student, voice.sample_rate))
        rows.append(SentenceResult(
            text, t.words, t.errors, s.errors, t.hypothesis, s.hypothesis,
            len(student) / len(teacher), _rms(student) / _rms(teacher),
        ))
    return rows, summarize(rows)


def summarize(rows: list[SentenceResult]) -> EvalSummary:
    words = sum(r.words for r in rows)
    return EvalSummary(
        sentences=len(rows),
        words=words,
        teacher_wer=sum(r.teacher_errors for r in rows) / max(words, 1),
        student_wer=sum(r.student_errors for r in rows) / max(words, 1),
        length_within_5pct=sum(abs(r.length_ratio - 1) <= 0.05 for r in rows) / max(len(rows), 1),
        min_rms_ratio=min(r.rms_ratio for r in rows),
        max_rms_ratio=max(r.rms_ratio for r in rows),
    )


def markdown_table(rows: list[SentenceResult], summary: EvalSummary) -> str:
    lines = [
        "| # | words | teacher err | AR err | length AR/teacher | RMS AR/teacher | sentence | AR heard (when wrong) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        heard = r.student_heard if r.student_errors else ""
        lines.append(f"| {i} | {r.words} | {r.teacher_errors} | {r.student_errors} | {r.length_ratio:.3f} "
                     f"| {r.rms_ratio:.2f} | {r.text} | {heard} |")
    s = summary
    lines.append("")
    lines.append(f"{s.sentences} sentences, {s.words} words: teacher WER {100 * s.teacher_wer:.2f}%, "
                 f"AR WER {100 * s.student_wer:.2f}%; length within ±5%: {100 * s.length_within_5pct:.0f}%; "
                 f"RMS ratio {s.min_rms_ratio:.2f}..{s.max_rms_ratio:.2f}")
    return "\n".join(lines)


def write_report(rows: list[SentenceResult], summary: EvalSummary, out_dir: Path) -> None:
    (out_dir / "eval.md").write_text(markdown_table(rows, summary) + "\n")
    (out_dir / "eval.json").write_text(json.dumps(
        {"summary": asdict(summary), "sentences": [asdict(r) for r in rows]}, indent=1))
