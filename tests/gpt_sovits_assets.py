"""A tiny GPT-SoVITS v2 voice for end-to-end tests, built from the shared fixtures (the tiny s1 and
s2 checkpoints in upstream's formats) plus a tiny random HuBERT saved with `transformers`, a 4 s
reference clip and a `tts_infer.yaml` as GPT-SoVITS writes it. Nothing is downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from shared_fixtures import gpt_sovits_fixtures
from stream_server.cli import _add_gpt_sovits, _parser
from stream_server.config import AppConfig

PROMPT_TEXT = "Hello there, this is my voice."


def cli_config(assets: dict[str, Path]) -> AppConfig:
    """The server configured the way a user would start it: the CLI's --gpt-sovits flags onto a
    config whose default voice is joe (the tiny voice is `gpt_sovits`)."""
    args = _parser().parse_args([
        "serve", "--gpt-sovits", str(assets["infer_yaml"]), "--ref-audio", str(assets["ref"]),
        "--prompt-text", PROMPT_TEXT, "--prompt-lang", "en",
    ])
    base = AppConfig.model_validate({
        "default_voice": "joe", "voices": {"joe": {"kind": "piper_vits"}},
        "engine": {"warmup": False}, "wyoming": {"enabled": False},
        "cache": {"redis_url": None, "embedded": False},  # in-process cache: repeats replay
        "admission": {"enabled": False},  # requests at once on a voice slower than real time here
    })
    return _add_gpt_sovits(base, args)


def tiny_hubert(directory: Path) -> Path:
    """A random HubertModel with HuBERT-base's output width (768, what SoVITS' ssl_proj takes)."""
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(
        hidden_size=768, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
        conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        HubertModel(config).save_pretrained(directory)
    return directory


def reference_clip(path: Path, seconds: float = 4.0) -> Path:
    """The fixture's 2 s reference audio at 32 kHz, repeated to `seconds` (upstream wants 3-10 s)."""
    wav = np.load(gpt_sovits_fixtures() / "sovits_tiny_io.npz")["ref_wav_32k"].astype(np.float32)
    n = int(32000 * seconds)
    sf.write(path, np.resize(wav, n), 32000)
    return path


def build(root: Path, t2s: str = "t2s_tiny_eos.ckpt") -> dict[str, Path]:
    """Everything a GPT-SoVITS user has, laid out as a GPT-SoVITS checkout: returns the paths."""
    fixtures = gpt_sovits_fixtures()
    models = root / "GPT_SoVITS" / "pretrained_models"
    models.mkdir(parents=True)
    gpt = models / "tiny-gpt.ckpt"
    sovits = models / "tiny-sovits.pth"
    shutil.copyfile(fixtures / t2s, gpt)
    shutil.copyfile(fixtures / "sovits_tiny.pth", sovits)
    hubert = tiny_hubert(models / "chinese-hubert-base")
    ref = reference_clip(root / "ref.wav")
    configs = root / "GPT_SoVITS" / "configs"
    configs.mkdir(parents=True)
    infer = configs / "tts_infer.yaml"
    custom = {  # relative to the checkout, as GPT-SoVITS writes them
        "device": "cpu", "is_half": False, "version": "v2",
        "t2s_weights_path": "GPT_SoVITS/pretrained_models/tiny-gpt.ckpt",
        "vits_weights_path": "GPT_SoVITS/pretrained_models/tiny-sovits.pth",
        "cnhuhbert_base_path": "GPT_SoVITS/pretrained_models/chinese-hubert-base",
        "bert_base_path": "GPT_SoVITS/pretrained_models/chinese-roberta-wwm-ext-large",
    }
    infer.write_text(yaml.safe_dump({"custom": custom}))
    return {"root": root, "gpt": gpt, "sovits": sovits, "hubert": hubert, "ref": ref, "infer_yaml": infer}
