"""Chinese BERT features for GPT-SoVITS v2 (upstream ``TextPreprocessor.get_bert_feature``).

The text goes through a ``chinese-roberta-wwm-ext-large``-style masked LM (loaded from a local
directory only); the third-from-last hidden layer, without [CLS]/[SEP], gives one 1024-d row
per character, and each row is repeated ``word2ph[i]`` times so that there is one column per
phone: a ``[1024, P]`` float32 tensor. Other languages get zeros (``zero_features``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

BERT_DIM = 1024
CONFIG_KEY = "bert_base_path"  # the voice config's key for the directory
MAX_CHARS = 510  # 512 positions less [CLS] and [SEP]; api_v2's splitting keeps pieces under it


class BertModelMissing(FileNotFoundError):
    """The Chinese BERT directory is not configured or not there."""


class BertModel:
    """A tokenizer and masked LM from one directory (never from the network)."""

    def __init__(self, bert_dir: Path, device: str = "cpu"):
        from transformers import AutoModelForMaskedLM, AutoTokenizer  # heavy: only when needed

        self.tokenizer = AutoTokenizer.from_pretrained(str(bert_dir), local_files_only=True)
        self.model = AutoModelForMaskedLM.from_pretrained(str(bert_dir), local_files_only=True)
        self.model.eval().to(device)
        self.device = torch.device(device)

    @torch.inference_mode()
    def char_features(self, text: str) -> torch.Tensor:
        """[len(text), hidden] from hidden_states[-3]; one token per character is required."""
        inputs = self.tokenizer(text, return_tensors="pt").to(self.device)
        out = self.model(**inputs, output_hidden_states=True)
        return out.hidden_states[-3][0, 1:-1].float().cpu()  # features are returned on the CPU


def check_bert_dir(bert_dir: Path | str | None) -> Path:
    if bert_dir is None:
        raise BertModelMissing(
            f"Chinese text needs BERT features, but no model directory is configured: set "
            f"'{CONFIG_KEY}' to a local chinese-roberta-wwm-ext-large directory"
        )
    path = Path(bert_dir)
    if not (path / "config.json").is_file():
        raise BertModelMissing(
            f"{CONFIG_KEY}: {path} is not a BERT model directory (no config.json); point "
            f"'{CONFIG_KEY}' at a local chinese-roberta-wwm-ext-large directory"
        )
    return path


@functools.lru_cache(maxsize=2)
def load_bert(bert_dir: str, device: str = "cpu") -> BertModel:
    return BertModel(check_bert_dir(bert_dir), device)


def zero_features(n_phones: int) -> torch.Tensor:
    return torch.zeros(BERT_DIM, n_phones, dtype=torch.float32)


def expand_to_phones(char_feats: torch.Tensor, word2ph: list[int]) -> torch.Tensor:
    """[chars, D] rows repeated per phone -> [D, sum(word2ph)]."""
    if char_feats.shape[0] != len(word2ph):
        raise ValueError(f"BERT gave {char_feats.shape[0]} tokens for {len(word2ph)} characters")
    counts = torch.tensor(word2ph, dtype=torch.long)
    return torch.repeat_interleave(char_feats, counts, dim=0).T.contiguous()


def bert_features(text: str, word2ph: list[int], bert_dir: Path | str | None,
                  model: BertModel | None = None) -> torch.Tensor:
    """Normalised Chinese ``text`` and its ``word2ph`` -> [1024, sum(word2ph)] features."""
    if len(text) != len(word2ph):
        raise ValueError(f"word2ph has {len(word2ph)} entries for {len(text)} characters")
    if not text:
        return zero_features(0)
    if len(text) > MAX_CHARS:
        raise ValueError(f"{len(text)} characters is too long for BERT (at most {MAX_CHARS}): split the text first")
    model = model or load_bert(str(check_bert_dir(bert_dir).resolve()))
    feats = expand_to_phones(model.char_features(text), word2ph)
    if feats.shape[0] != BERT_DIM:
        raise ValueError(f"BERT hidden size is {feats.shape[0]}, GPT-SoVITS v2 needs {BERT_DIM}")
    return feats
