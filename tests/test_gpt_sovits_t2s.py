"""GPT-SoVITS v2 T2S (s1/GPT): loader, network, sampling and per-slot batched decoding, against
the reference fixtures computed by upstream's own code (shared/fixtures/gpt_sovits/README.md)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from stream_server.engine.kv_cache import CacheCapacityError, StaticKVCache
from stream_server.models.gpt_sovits.sampling import (
    RowParams,
    SamplingParams,
    apply_repetition_penalty,
    draw,
    sample_tokens,
    top_p_top_k_temperature,
)
from stream_server.models.gpt_sovits.t2s_checkpoint import (
    S1V2_CONFIG,
    T2SCheckpointError,
    load_t2s,
    random_t2s,
)
from stream_server.models.gpt_sovits.t2s_model import T2SConfig, T2SModel

REAL = SamplingParams(top_k=15, top_p=0.9, temperature=0.8, repetition_penalty=1.35)


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


# ---- sampling ---------------------------------------------------------------------------------


def _rows(*params: SamplingParams, vocab: int) -> RowParams:
    return RowParams.stack(list(params), vocab)


def test_repetition_penalty_rule() -> None:
    logits = torch.tensor([[-2.0, 3.0, 1.0, -1.0]])
    seen = torch.tensor([[True, True, False, False]])
    out = apply_repetition_penalty(logits, seen, torch.tensor([2.0]))
    assert out.tolist() == [[-4.0, 1.5, 1.0, -1.0]]  # negative x p, positive / p, unseen kept


def test_top_p_follows_upstream_cut() -> None:
    logits = torch.tensor([[0.5, 0.3, 0.2]]).log()  # cumulative 0.5, 0.8, 1.0

    def keep(top_p: float) -> torch.Tensor:
        return torch.isfinite(top_p_top_k_temperature(logits, _rows(SamplingParams(0, top_p, 1.0, 1.0), vocab=3)))

    assert keep(0.7).tolist() == [[True, False, False]]  # the token crossing top_p is dropped too
    assert keep(0.85).tolist() == [[True, True, False]]
    assert keep(0.1).tolist() == [[True, False, False]]  # the best token always stays
    assert keep(1.0).all()


def test_temperature_then_top_k_per_row() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    rows = _rows(SamplingParams(2, 1.0, 2.0, 1.0), SamplingParams(3, 1.0, 0.5, 1.0), vocab=4)
    out = top_p_top_k_temperature(logits, rows)
    inf = float("-inf")
    assert out.tolist() == [[inf, inf, 1.5, 2.0], [8.0, 6.0, 4.0, inf]]


def test_rows_sample_independently() -> None:
    """A row's token depends on its own logits, parameters and generator only."""
    g = torch.Generator().manual_seed(0)
    logits, seen = torch.randn(3, 50, generator=g), torch.rand(3, 50, generator=g) < 0.2
    params = [REAL, SamplingParams(40, 1.0, 1.5, 1.0), SamplingParams(5, 0.8, 1.0, 1.2)]

    def gens() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(s) for s in (11, 12, 13)]

    together, _ = sample_tokens(logits, seen, _rows(*params, vocab=50), gens(), [50, 49, 50])
    alone = [sample_tokens(logits[b:b + 1], seen[b:b + 1], _rows(params[b], vocab=50), [gens()[b]], [w])[0].item()
             for b, w in enumerate([50, 49, 50])]
    assert together.tolist() == alone


def test_draw_uses_the_rows_generator_like_upstream() -> None:
    """argmax(probs / Exp(1)) with exactly as many draws as upstream makes: 8, or 7 while the
    last entry (EOS, probability 0) is cut off."""
    probs = torch.softmax(torch.randn(1, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    probs[0, 7] = 0.0
    for width in (7, 8):
        gen, ref_gen = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        tokens = [draw(probs, [gen], [width]).item() for _ in range(20)]
        ref = [torch.argmax(probs[:, :width] / torch.empty(1, width).exponential_(1, generator=ref_gen)).item()
               for _ in range(20)]
        assert tokens == ref and len(set(tokens)) > 2
        assert torch.equal(gen.get_state(), ref_gen.get_state())
    other_seed = torch.Generator().manual_seed(4)
    assert [draw(probs, [other_seed], [8]).item() for _ in range(20)] != tokens


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
