"""The AR voice recipe end to end at toy size (the real run is ~70 min, never in CI): dataset from
the teacher, a few training steps, the held-out judge, the exported weights."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from stream_server.models.ar_latent.ar_weights import load_model, read_weights
from stream_server.train.dataset import DistillDataset
from stream_server.train.trainer import collate, make_batches, masked_loss

pytestmark = pytest.mark.slow


def test_recipe_smoke_writes_loss_curve_eval_and_weights(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "stream_server.train", "--out", str(out), "--sentences", "24",
           "--steps", "3", "--eval-sentences", "2", "--workers", "1", "--threads", "1"]
    subprocess.run(cmd, check=True, timeout=600)
    data = DistillDataset.load(out / "dataset.pt")
    assert len(data) == 24 and data.cond.shape == data.target.shape and data.cond.dtype == torch.float16
    curve = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert curve[-1]["step"] == 3 and curve[-1]["val_loss"] > 0
    report = json.loads((out / "eval.json").read_text())
    assert report["summary"]["sentences"] == 2 and len(report["sentences"]) == 2
    cfg, state, meta = read_weights(out / "joe_ar.pt")
    assert meta["steps"] == 3 and meta["sentences"] == 24
    load_model(out / "joe_ar.pt")  # loads into the serving model class
    # the second run reuses the dataset (same inputs) instead of rebuilding it
    subprocess.run(cmd, check=True, timeout=600)
    assert "reusing" in (out / "recipe.log").read_text()


def test_teacher_targets_are_the_decoder_input_of_the_conditioning(piper):
    """The dataset pairs each conditioning frame sequence with exactly the latents the teacher's
    decoder would get at noise 0, so the student learns what the teacher does."""
    from stream_server.train.dataset import TeacherScales, sentence_params, teacher_pair

    params = sentence_params(3, TeacherScales(), seed=0)
    assert params.noise_scale == 0.0
    text = "Bring me three wolf pelts before nightfall."
    cond, target = teacher_pair(piper, text, params)
    assert torch.equal(target, piper.latents(text, params))
    assert cond.shape == target.shape


def test_batches_respect_the_frame_budget_and_loss_ignores_padding():
    lengths = [5, 50, 7, 48, 6, 100]
    batches = make_batches(lengths, list(range(6)), frames_per_batch=100)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len(b) * max(lengths[i] for i in b) <= 100 for b in batches)
    offsets = torch.tensor([0, *lengths]).cumsum(0)
    total = int(offsets[-1])
    data = DistillDataset(["x"] * 6, [None] * 6, offsets, torch.randn(4, total).half(), torch.randn(4, total).half())
    cond, mask, target = collate(data, [0, 1])
    pred = target.clone()
    pred[0, :, 5:] = 1e6  # garbage in sentence 0's padding must not count
    assert masked_loss(pred, target, mask, 0.5).item() == 0.0


def test_training_steps_reduce_the_loss(piper, tmp_path):
    """A small model on a few real teacher pairs: the loss must fall (optimizer really steps)."""
    from stream_server.models.ar_latent.ar_acoustic import ArConfig
    from stream_server.train.dataset import TeacherScales, sentence_params, teacher_pair
    from stream_server.train.trainer import TrainConfig, train

    texts = ["Hello there, friend.", "The gate opens at dawn.", "Do you have any bread?", "It is 7 degrees outside."]
    pairs = [teacher_pair(piper, t, sentence_params(i, TeacherScales(), 0)) for i, t in enumerate(texts)]
    offsets = torch.tensor([0, *[c.shape[1] for c, _ in pairs]]).cumsum(0)
    data = DistillDataset(texts, [None] * 4, offsets, torch.cat([c for c, _ in pairs], 1).half(),
                          torch.cat([t for _, t in pairs], 1).half())
    cfg = TrainConfig(steps=60, lr=3e-3, warmup=5, val_sentences=1, log_every=5, eval_every=60, threads=1)
    model_cfg = ArConfig(d_model=64, n_heads=2, n_layers=1, max_steps=256)
    train(data, cfg, model_cfg, tmp_path / "log.jsonl", log=lambda m: None)
    curve = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert curve[-1]["loss"] < 0.6 * curve[0]["loss"]
