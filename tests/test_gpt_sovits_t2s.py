"""GPT-SoVITS v2 T2S (s1/GPT): loader, network, sampling and per-slot batched decoding, against
the reference fixtures computed by upstream's own code (shared/fixtures/gpt_sovits/README.md)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from stream_server.engine.kv_cache import CacheCapacityError, StaticKVCache
from stream_server.models.gpt_sovits.t2s_checkpoint import (
    S1V2_CONFIG,
    T2SCheckpointError,
    load_t2s,
    random_t2s,
)
from stream_server.models.gpt_sovits.t2s_model import T2SConfig, T2SModel



def _shared_dir() -> Path:
    """STREAM_SERVER_SHARED if set, else <repo>/../shared, else /work/shared."""
    env = os.environ.get("STREAM_SERVER_SHARED")
    tried = [Path(env)] if env else [Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")]
    for path in tried:
        if (path / "fixtures" / "gpt_sovits").is_dir():
            return path
    pytest.fail(f"GPT-SoVITS fixtures not found: no fixtures/gpt_sovits under {[str(p) for p in tried]} "
                "(set STREAM_SERVER_SHARED to the shared/ folder)")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Intra-op threads spin at barriers: on a shared 2-core box 2 threads can be 5x slower than 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fixtures() -> Path:
    return _shared_dir() / "fixtures" / "gpt_sovits"


@pytest.fixture(scope="module")
def io(fixtures: Path) -> dict[str, torch.Tensor]:
    with np.load(fixtures / "t2s_tiny_io.npz") as z:
        return {k: torch.from_numpy(z[k]) for k in z.files}


@pytest.fixture(scope="module")
def model(fixtures: Path) -> T2SModel:
    return load_t2s(fixtures / "t2s_tiny.ckpt")


@pytest.fixture(scope="module")
def eos_model(fixtures: Path) -> T2SModel:
    return load_t2s(fixtures / "t2s_tiny_eos.ckpt")


def _inputs(io: dict, zero_bert: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    bert = io["bert"][0]
    return io["phones"][0], torch.zeros_like(bert) if zero_bert else bert, io["prompt"][0]


# ---- network -------------------------------------------------------------------------------


def test_first_logits_match_upstream(model: T2SModel, io: dict) -> None:
    phones, bert, prompt = _inputs(io, zero_bert=True)
    with torch.inference_mode():
        logits, kv = model(phones, bert, prompt)
    diff = (logits - io["first_logits"]).abs().max().item()
    print(f"first_logits max abs diff {diff:.3g}")
    assert diff < 1e-3
    assert len(kv) == 3 and kv[0][0].shape == (4, 37 + 25, 16)


def test_real_size_geometry() -> None:
    with torch.device("meta"):
        m = T2SModel(S1V2_CONFIG)
    n = sum(p.numel() for p in m.parameters())
    assert 77.5e6 < n < 77.7e6  # upstream s1 v2/v3: 77.61 M
    assert (S1V2_CONFIG.dim, S1V2_CONFIG.n_heads, S1V2_CONFIG.n_layers, S1V2_CONFIG.ffn_dim) == (512, 16, 24, 2048)


def test_random_t2s_is_seeded() -> None:
    cfg = T2SConfig(dim=32, n_heads=4, n_layers=2)
    a, b, c = random_t2s(cfg, seed=1), random_t2s(cfg, seed=1), random_t2s(cfg, seed=2)
    wa, wb, wc = (m.h.layers[0].linear1.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


# ---- checkpoint loading ------------------------------------------------------------------------


def test_loader_keeps_fp16_weights_exactly(fixtures: Path) -> None:
    blob = torch.load(fixtures / "t2s_tiny.ckpt", weights_only=True)
    m32 = load_t2s(fixtures / "t2s_tiny.ckpt")
    w = m32.h.layers[1].self_attn.in_proj_weight
    stored = blob["weight"]["model.h.layers.1.self_attn.in_proj_weight"]
    assert stored.dtype == torch.float16 and w.dtype == torch.float32 and torch.equal(w, stored.float())
    assert next(load_t2s(fixtures / "t2s_tiny.ckpt", dtype=torch.bfloat16).parameters()).dtype == torch.bfloat16


def test_loader_refuses_other_versions(fixtures: Path, tmp_path: Path) -> None:
    blob = torch.load(fixtures / "t2s_tiny.ckpt", weights_only=True)
    blob["config"]["model"]["phoneme_vocab_size"] = 512  # GPT-SoVITS v1
    blob["weight"]["model.ar_text_embedding.word_embeddings.weight"] = torch.zeros(512, 64, dtype=torch.float16)
    torch.save(blob, tmp_path / "v1.ckpt")
    with pytest.raises(T2SCheckpointError, match=r"512 \(v1\).*only GPT-SoVITS v2.*732"):
        load_t2s(tmp_path / "v1.ckpt")


def test_loader_refuses_mismatched_weights(fixtures: Path, tmp_path: Path) -> None:
    blob = torch.load(fixtures / "t2s_tiny.ckpt", weights_only=True)
    blob["config"]["model"]["n_layer"] = 4  # one layer more than the weights hold
    torch.save(blob, tmp_path / "bad.ckpt")
    with pytest.raises(T2SCheckpointError, match="missing.*h.layers.3"):
        load_t2s(tmp_path / "bad.ckpt")


class _RunsCode:
    """Unpickling this calls os.mkdir(marker): what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_loader_refuses_pickle_that_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    torch.save({"weight": {"model.x": _RunsCode(marker)}, "config": {}, "info": "x"}, tmp_path / "evil.ckpt")
    with pytest.raises(T2SCheckpointError, match="refused"):
        load_t2s(tmp_path / "evil.ckpt")
    assert not marker.exists()


# ---- static cache additions ------------------------------------------------------------------


def test_cache_write_range_and_set_position() -> None:
    cache = StaticKVCache(n_layers=2, max_slots=3, n_heads=2, max_steps=8, head_dim=4, span_bucket=1)
    k, v = torch.randn(2, 5, 4), torch.randn(2, 5, 4)  # [H, S, Dh]
    cache.write_range(1, 2, 1, k, v)
    assert torch.equal(cache.k[1, 2, :, 1:6], k) and torch.equal(cache.v[1, 2, :, 1:6], v)
    assert cache.k[1, 2, :, [0, 6, 7]].abs().sum() == 0 and cache.k[0].abs().sum() == 0
    assert cache.k[1, :2].abs().sum() == 0  # other slots untouched
    cache.set_position(2, 6)
    assert cache.pos_host[2] == 6 and cache.pos[2].item() == 6
    plan = cache.plan([2])
    assert plan.pos.tolist() == [6] and plan.span == 7 and plan.mask[0, 0, 0].all()
    with pytest.raises(CacheCapacityError, match="max_steps=8"):
        cache.write_range(0, 0, 4, k, v)  # [4, 9) > 8
    with pytest.raises(CacheCapacityError):
        cache.set_position(0, 9)
