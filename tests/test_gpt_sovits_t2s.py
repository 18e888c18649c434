"""GPT-SoVITS v2 T2S (s1/GPT): loader, network, sampling and per-slot batched decoding, against
the reference fixtures computed by upstream's own code (shared/fixtures/gpt_sovits/README.md)."""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from shared_fixtures import gpt_sovits_fixtures
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
from stream_server.models.gpt_sovits.t2s_slots import SlotState, T2SRequest, T2SSlots, decode_offline

GREEDY = dict(top_k=1, top_p=1.0, temperature=1.0)
REAL = SamplingParams(top_k=15, top_p=0.9, temperature=0.8, repetition_penalty=1.35)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py: why


@pytest.fixture(scope="module")
def fixtures() -> Path:
    return gpt_sovits_fixtures()


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


# ---- greedy decoding == upstream --------------------------------------------------------------


@pytest.mark.parametrize("key,zero_bert,penalty", [
    ("tokens_zero_bert", True, 1.35),
    ("tokens_random_bert", False, 1.35),
    ("tokens_random_bert_no_penalty", False, 1.0),
])
def test_greedy_tokens_match_upstream(model: T2SModel, io: dict, key: str, zero_bert: bool, penalty: float) -> None:
    phones, bert, prompt = _inputs(io, zero_bert)
    req = T2SRequest(phones, bert, prompt, SamplingParams(**GREEDY, repetition_penalty=penalty), 0, 60)
    assert decode_offline(model, [req])[0] == io[key][25:].tolist()  # 61 new tokens: > 60 stops


def test_eos_rules_match_upstream(eos_model: T2SModel, io: dict) -> None:
    phones, bert, prompt = _inputs(io, zero_bert=True)
    req = T2SRequest(phones, bert, prompt, SamplingParams(**GREEDY, repetition_penalty=1.35), 0, -1)
    out = decode_offline(eos_model, [req])[0]
    assert out == io["tokens_eos_ckpt_zero_bert"][25:].tolist()
    assert len(out) == 11 and eos_model.cfg.eos not in out  # EOS blocked for 11 steps, then not emitted


# ---- batched == alone -------------------------------------------------------------------------


def _requests(io: dict) -> list[T2SRequest]:
    phones, bert, prompt = _inputs(io, zero_bert=False)
    zero = torch.zeros_like(bert)
    return [
        T2SRequest(phones, zero, prompt, REAL, seed=1, early_stop_num=40),
        T2SRequest(phones[:20], bert[:, :20], prompt[:10], SamplingParams(5, 1.0, 1.0, 1.0), seed=2, early_stop_num=25),
        T2SRequest(phones[5:], bert[:, 5:], prompt[:0], REAL, seed=3, early_stop_num=50),  # no reference prompt
        T2SRequest(phones, bert, prompt, SamplingParams(**GREEDY, repetition_penalty=1.35), seed=0, early_stop_num=60),
        T2SRequest(phones[:30], bert[:, :30], prompt[3:20], SamplingParams(30, 0.95, 1.2, 1.1), seed=4,
                   early_stop_num=30),
        T2SRequest(phones[8:], zero[:, 8:], prompt[5:], REAL, seed=5, early_stop_num=45),
    ]


def _run_schedule(m: T2SModel, reqs: list[T2SRequest], plan: list[tuple[int, int]], window_ratio: float,
                  order_seed: int) -> list[list[int]]:
    """Request i joins slot plan[i][1] at global step >= plan[i][0] (once that slot is free); each
    step runs every live slot in a shuffled order; finished slots are released at once."""
    slots = T2SSlots(m, 6, max_len=192, window_ratio=window_ratio)
    rng, owner, out = random.Random(order_seed), {}, [[] for _ in reqs]
    pending, step = list(enumerate(plan)), 0
    while pending or owner:
        for i, (at, slot) in list(pending):
            if at <= step and slot not in owner:
                r = reqs[i]
                slots.prefill(slot, r.phones, r.bert, r.prompt, r.sampling, r.seed, r.early_stop_num)
                owner[slot] = i
                pending.remove((i, (at, slot)))
        live = list(owner)
        rng.shuffle(live)
        if live:
            tokens, finished = slots.decode_step(live)
            for s, t, f in zip(live, tokens.tolist(), finished.tolist()):
                if t != m.cfg.eos:
                    out[owner[s]].append(t)
                if f:
                    assert out[owner[s]] == slots.generated(s)
                    slots.release(s)
                    del owner[s]
        step += 1
    return out


@pytest.mark.parametrize("which", ["tiny", "eos"])
@pytest.mark.parametrize("window_ratio", [2.0, 0.0])  # slot-window view / gathered copy
def test_batched_equals_alone(model: T2SModel, eos_model: T2SModel, io: dict, which: str, window_ratio: float) -> None:
    m = model if which == "tiny" else eos_model
    reqs = _requests(io)
    alone = [decode_offline(m, [r], max_len=192)[0] for r in reqs]
    plan = [(0, 4), (3, 1), (5, 5), (9, 1), (9, 0), (12, 4)]  # slots 1 and 4 are reused
    batched = _run_schedule(m, reqs, plan, window_ratio, order_seed=len(which))
    assert batched == alone
    if which == "tiny":
        assert alone[3] == io["tokens_random_bert"][25:].tolist()  # greedy fixture request, in a batch
        assert [len(a) for a in alone] == [41, 26, 51, 61, 31, 46]  # all stop by early_stop_num
    else:
        assert len(alone[3]) == 11  # EOS as soon as it is allowed


def test_seed_decides_the_sample(model: T2SModel, io: dict) -> None:
    phones, bert, prompt = _inputs(io, zero_bert=False)
    req = T2SRequest(phones, bert, prompt, REAL, seed=7, early_stop_num=30)
    a, b, c = (decode_offline(model, [r])[0] for r in (req, req, replace(req, seed=8)))
    assert a == b
    assert a != c


# ---- slot lifecycle ---------------------------------------------------------------------------


def test_slot_lifecycle_errors(model: T2SModel, io: dict) -> None:
    phones, bert, prompt = _inputs(io, zero_bert=True)
    slots = T2SSlots(model, 2, max_len=80)
    with pytest.raises(ValueError, match="prefilled"):
        slots.decode_step([0])
    with pytest.raises(CacheCapacityError, match="max_len=80"):
        slots.prefill(0, phones, bert, prompt, early_stop_num=20)  # 62 + 20 positions > 80
    assert slots.state(0) is SlotState.FREE
    slots.prefill(0, phones, bert, prompt, SamplingParams(**GREEDY), early_stop_num=2)  # 62 + 2 <= 80
    with pytest.raises(ValueError, match="release"):
        slots.prefill(0, phones, bert, prompt)
    finished = [slots.decode_step([0]).finished.item() for _ in range(3)]
    assert finished == [False, False, True] and len(slots.generated(0)) == 3
    with pytest.raises(ValueError, match="finished"):
        slots.decode_step([0])
    slots.release(0)
    assert slots.state(0) is SlotState.FREE and slots.generated(0) == []
    with pytest.raises(ValueError, match="phone ids"):
        slots.prefill(1, phones + 1000, bert, prompt)


def test_cached_steps_equal_full_recompute(model: T2SModel, io: dict) -> None:
    """Every decode step's logits equal a fresh forward over the prompt plus the tokens generated
    so far: cache positions, audio positions and the static-cache mask are exact."""
    phones, bert, prompt = _inputs(io, zero_bert=False)
    slots = T2SSlots(model, 3, max_len=192)
    slots.prefill(1, phones[:9], bert[:, :9], prompt[:4], SamplingParams(**GREEDY), early_stop_num=10)  # a neighbour
    slots.prefill(2, phones, bert, prompt, REAL, seed=3, early_stop_num=70)
    with torch.inference_mode():
        for step in range(70):
            slots.decode_step([2, 1] if slots.state(1) is not SlotState.FINISHED else [2])
            gen = torch.tensor(slots.generated(2)[:-1], dtype=torch.long)  # fed before this step
            ref, _ = model(phones, bert, torch.cat((prompt, gen)))
            assert (slots.last_logits(2) - ref).abs().max().item() < 1e-4, step


def _fixed_logits_model(logit_of: dict[int, float]) -> T2SModel:
    """Logits that do not depend on the input: the last LayerNorm outputs the constant e0, and
    the read-out maps e0 to ``logit_of`` (0 elsewhere)."""
    m = random_t2s(T2SConfig(dim=8, n_heads=2, n_layers=1), seed=0)
    with torch.no_grad():
        norm = m.h.layers[-1].norm2
        norm.weight.zero_()
        norm.bias.zero_()
        norm.bias[0] = 1.0
        m.ar_predict_layer.weight.zero_()
        for token, value in logit_of.items():
            m.ar_predict_layer.weight[token, 0] = value
    return m


@pytest.mark.parametrize("logit_of,penalty,n_out", [
    ({1024: 1.0}, 1.0, 11),  # EOS is the argmax: stop, though the (near-uniform) sample is not EOS
    ({1024: 1.0, 5: 1.2}, 1.35, 11),  # the penalised argmax counts: token 5 is in the prompt, 1.2/1.35 < 1
    ({1024: 1.0, 5: 1.2}, 1.0, 31),  # no penalty: token 5 stays the argmax, decoding runs to early_stop_num
])
def test_stop_when_argmax_is_eos(io: dict, logit_of: dict, penalty: float, n_out: int) -> None:
    m = _fixed_logits_model(logit_of)
    slots = T2SSlots(m, 1, max_len=64)
    phones, bert, _ = _inputs(io, zero_bert=True)
    hot = SamplingParams(top_k=0, top_p=1.0, temperature=100.0, repetition_penalty=penalty)
    slots.prefill(0, phones[:4], bert[:, :4], torch.tensor([5, 7]), hot, seed=0, early_stop_num=30)
    steps = []
    while not steps or not steps[-1].finished.item():
        steps.append(slots.decode_step([0]))
    out = slots.generated(0)
    assert len(out) == n_out and m.cfg.eos not in out
    assert len(set(out)) > n_out // 2  # the samples really were near-uniform
    emitted_last = steps[-1].tokens.item() != m.cfg.eos
    assert emitted_last == (n_out == 31)  # an EOS stop emits nothing; an early stop emits its token


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

