"""Judging the AR voice's own vocoder: Distill-MOS while it trains, Whisper and Distill-MOS at the end.

Held-out sentences are spoken three ways on the same durations: the teacher (its latents through
its HiFi-GAN), the AR voice through the teacher's HiFi-GAN (what served before), and the AR voice
through its own vocoder. Per way: word error rate (Whisper judge) and mean Distill-MOS.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..models.ar_latent.ar_slots import decode_offline
from ..models.ar_latent.ar_weights import load_model
from ..models.piper_vits.piper_voice import PiperVoice
from .dataset import teacher_pair
from .evaluate import EVAL_PARAMS
from .vocoder_data import VocoderDataset

WAYS = ("teacher", "ar_hifigan", "ar_vocoder")


def validation_mos(data: VocoderDataset, indices: list[int], sample_rate: int):
    """An on_eval hook: mean Distill-MOS of whole validation sentences decoded from AR frames,
    beside the teacher audio's (scored once)."""
    from ..speech_quality import DistillMosJudge

    judge = DistillMosJudge()
    teacher = float(np.mean([judge.score(data.sentence_audio(i).numpy(), sample_rate) for i in indices]))

    @torch.no_grad()
    def on_eval(model, step: int) -> dict:
        scores = [judge.score(model(data.frames(i, "ar").float()[None])[0].numpy(), sample_rate) for i in indices]
        return {"val_mos": round(float(np.mean(scores)), 4), "val_teacher_mos": round(teacher, 4)}

    return on_eval


@torch.no_grad()
def speak_three_ways(voice: PiperVoice, ar_model, vocoder, texts: list[str]) -> list[dict]:
    pairs = [teacher_pair(voice, t, EVAL_PARAMS) for t in texts]
    ar = decode_offline(ar_model, [cond for cond, _ in pairs])
    return [
        {"teacher": voice.decode(tz[None])[0].numpy(), "ar_hifigan": voice.decode(z[None])[0].numpy(),
         "ar_vocoder": vocoder(z[None])[0].numpy()}
        for (_, tz), z in zip(pairs, ar)
    ]


def judge_heldout(vocoder, ar_weights: Path, texts: list[str], out: Path, log=print) -> dict:
    from ..intelligibility import WhisperJudge, word_errors
    from ..speech_quality import DistillMosJudge

    voice = PiperVoice.from_package()
    whisper, mos = WhisperJudge(), DistillMosJudge()
    rows = []
    for text, audio in zip(texts, speak_three_ways(voice, load_model(ar_weights), vocoder.eval(), texts)):
        row: dict = {"text": text}
        for way in WAYS:
            score = word_errors(text, whisper.transcribe(audio[way], voice.sample_rate))
            row[way] = {"errors": score.errors, "words": score.words, "heard": score.hypothesis,
                        "mos": mos.score(audio[way], voice.sample_rate)}
        rows.append(row)
    words = sum(r["teacher"]["words"] for r in rows)
    summary = {"sentences": len(rows), "words": words}
    for way in WAYS:
        summary[f"{way}_wer"] = sum(r[way]["errors"] for r in rows) / max(words, 1)
        summary[f"{way}_mos"] = float(np.mean([r[way]["mos"] for r in rows]))
    (out / "eval.json").write_text(json.dumps({"summary": summary, "sentences": rows}, indent=1))
    lines = ["| # | sentence | " + " | ".join(f"{w} err / MOS" for w in WAYS) + " |",
             "|---|---|" + "---|" * len(WAYS)]
    for i, r in enumerate(rows, 1):
        cells = " | ".join(f"{r[w]['errors']} / {r[w]['mos']:.2f}" for w in WAYS)
        lines.append(f"| {i} | {r['text']} | {cells} |")
    lines.append("")
    lines.append(f"{len(rows)} sentences, {words} words: " + "; ".join(
        f"{w} WER {100 * summary[f'{w}_wer']:.2f}% MOS {summary[f'{w}_mos']:.3f}" for w in WAYS))
    (out / "eval.md").write_text("\n".join(lines) + "\n")
    log(lines[-1])
    return summary
