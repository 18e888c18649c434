"""The vocoder's distillation data: what the AR voice makes, and what its teacher would say.

Per sentence, with the teacher's durations (as the served voice gets them):
  ar      = the AR voice's own latent frames, decoded step by step as it serves them  [D, F]
  teacher = the teacher's latent frames (flow_reverse of the prior mean)              [D, F]
  audio   = the teacher's HiFi-GAN on `teacher`                                       [F * hop]
The vocoder learns ar -> audio (and, for a fraction of its samples, teacher -> audio), so it is
trained on exactly the frames it will be given, and it can undo what the AR voice blurs.
Sentences come from the same generator as the AR voice's, under another seed: mostly sentences
the AR model never saw, whose errors are the ones it makes when serving.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import torch

from ..models.ar_latent.ar_slots import decode_offline
from ..models.ar_latent.ar_weights import load_model
from ..models.piper_vits.piper_voice import PiperVoice, SynthesisParams
from .dataset import TeacherScales, sentence_params, teacher_pair

JOB_SENTENCES = 8  # decoded together by the AR model in one worker call


@dataclass
class VocoderDataset:
    sentences: list[str]
    offsets: torch.Tensor  # [N + 1] int64 frame offsets
    ar: torch.Tensor  # [D, total_F] fp16
    teacher: torch.Tensor  # [D, total_F] fp16
    audio: torch.Tensor  # [total_F * hop] float32
    hop: int

    def __len__(self) -> int:
        return len(self.sentences)

    def lengths(self) -> list[int]:
        return (self.offsets[1:] - self.offsets[:-1]).tolist()

    def frames(self, i: int, source: str) -> torch.Tensor:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return (self.ar if source == "ar" else self.teacher)[:, a:b]

    def sentence_audio(self, i: int) -> torch.Tensor:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.audio[a * self.hop : b * self.hop]

    def seconds(self, sample_rate: int) -> float:
        return self.audio.numel() / sample_rate

    def save(self, path: Path) -> None:
        torch.save({"sentences": self.sentences, "offsets": self.offsets, "ar": self.ar,
                    "teacher": self.teacher, "audio": self.audio, "hop": self.hop}, path)

    @classmethod
    def load(cls, path: Path) -> VocoderDataset:
        d = torch.load(path, weights_only=True)
        return cls(d["sentences"], d["offsets"], d["ar"], d["teacher"], d["audio"], d["hop"])


def fingerprint(sentences: list[str], scales: TeacherScales, seed: int, ar_weights: Path) -> str:
    digest = hashlib.sha256(ar_weights.read_bytes()).hexdigest()
    blob = json.dumps({"s": sentences, "scales": asdict(scales), "seed": seed, "ar": digest}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- building (worker processes, one torch thread each) ------------------------

_state: dict = {}


def _init_worker(ar_weights: str) -> None:
    torch.set_num_threads(1)
    _state["voice"] = PiperVoice.from_package()
    _state["model"] = load_model(ar_weights)


def sentence_triples(voice: PiperVoice, model, jobs: list[tuple[str, SynthesisParams]]):
    """[(text, params)] -> [(ar [D, F], teacher [D, F], audio [F * hop])] float32."""
    pairs = [teacher_pair(voice, text, params) for text, params in jobs]
    ar = decode_offline(model, [cond for cond, _ in pairs])
    return [(a, t, voice.decode(t[None])[0]) for a, (_, t) in zip(ar, pairs)]


def _work(jobs: list[tuple[str, SynthesisParams]]):
    with torch.inference_mode():
        triples = sentence_triples(_state["voice"], _state["model"], jobs)
    return [(a.half(), t.half(), x.float()) for a, t, x in triples]


def build_vocoder_dataset(
    sentences: list[str], ar_weights: Path, scales: TeacherScales = TeacherScales(), seed: int = 0,
    workers: int = 2, log=print,
) -> VocoderDataset:
    params = [sentence_params(i, scales, seed) for i in range(len(sentences))]
    jobs = list(zip(sentences, params))
    batches = [jobs[i : i + JOB_SENTENCES] for i in range(0, len(jobs), JOB_SENTENCES)]
    ar, teacher, audio = [], [], []
    ctx = get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(str(ar_weights),)) as pool:
        for k, triples in enumerate(pool.imap(_work, batches)):
            for a, t, x in triples:
                ar.append(a)
                teacher.append(t)
                audio.append(x)
            if (k + 1) % 25 == 0:
                log(f"vocoder dataset: {len(ar)}/{len(sentences)} sentences")
    hop = audio[0].numel() // ar[0].shape[1]
    lengths = torch.tensor([a.shape[1] for a in ar])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    return VocoderDataset(sentences, offsets, torch.cat(ar, 1), torch.cat(teacher, 1), torch.cat(audio), hop)
