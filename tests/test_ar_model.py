"""AR acoustic model and its per-slot serving state (ArSlots): static KV cache mechanics
(random weights).

Tolerance: float32 on CPU, batched/reordered/teacher-forced results must match
single-sequence decoding within max |diff| <= 1e-4 (measured ~1e-6).
"""

from __future__ import annotations

import random

import pytest
import torch

from stream_server.models.ar_latent.ar_acoustic import (
    ArAcousticModel,
    ArConfig,
    CacheCapacityError,
    stack_frames,
)
from stream_server.models.ar_latent.ar_slots import ArSlots, decode_offline

TOL = 1e-4  # max abs diff, float32
CFG = ArConfig()
K = CFG.frames_per_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py: why


@pytest.fixture(scope="module")
def model() -> ArAcousticModel:
    torch.manual_seed(0)
    return ArAcousticModel(CFG).eval()


def make_cond(n_frames: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(CFG.cond_dim, n_frames, generator=g)  # [C, F]


def decode_alone(model: ArAcousticModel, cond: torch.Tensor) -> torch.Tensor:
    """Fresh serving state, batch of 1 -> latent [D, F]."""
    state = ArSlots(model, 1)
    S = state.prefill(0, cond)
    return stack_frames([state.decode_step([0])[0] for _ in range(S)], cond.shape[1])


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def run_schedule(state: ArSlots, seqs, joins, slots, rng):
    """Continuous batching over ``slots``: admit at join step into the lowest free slot,
    decode the active slots in a random order each step, release finished sequences."""
    pending = sorted(seqs, key=lambda n: joins[n])
    free, active, outs, slot_of = list(slots), {}, {}, {}
    step = 0
    while pending or active:
        while pending and joins[pending[0]] <= step and free:
            name = pending.pop(0)
            slot = min(free)
            free.remove(slot)
            active[slot] = (name, state.prefill(slot, seqs[name]), [])
            slot_of[name] = slot
        order = list(active)
        rng.shuffle(order)
        if order:
            frames = state.decode_step(order)  # [B, K, D]
            for i, slot in enumerate(order):
                active[slot][2].append(frames[i].clone())
        for slot in [s for s, (_, S, got) in active.items() if len(got) == S]:
            name, _, got = active.pop(slot)
            outs[name] = stack_frames(got, seqs[name].shape[1])
            state.release(slot)
            free.append(slot)
        step += 1
    return outs, slot_of


# 1 ---------------------------------------------------------------------------


@pytest.mark.parametrize("read", ["auto", "gather", "window"])
def test_continuous_batching_matches_alone(model, read):
    lengths = {"A": 16, "B": 29, "C": 61, "D": 11, "E": 40}  # frames; not all multiples of K
    joins = {"A": 0, "B": 2, "C": 5, "D": 6, "E": 7}  # E waits for a free slot
    seqs = {n: make_cond(f, seed=i) for i, (n, f) in enumerate(lengths.items())}
    ref = {n: decode_alone(model, c) for n, c in seqs.items()}

    ratio = {"auto": 2.0, "gather": 0.0, "window": float("inf")}[read]
    # 3 usable slots with never-used slots between them; attention spans other than
    # the alone runs' (64)
    state = ArSlots(model, 6, span_bucket=8, window_ratio=ratio)
    outs, slot_of = run_schedule(state, seqs, joins, [0, 2, 5], random.Random(0))

    assert slot_of["D"] == slot_of["A"]  # D reuses A's freed slot
    diffs = {n: max_diff(outs[n], ref[n]) for n in seqs}
    assert max(diffs.values()) <= TOL, diffs


# 2 ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["finished", "cancelled", "poisoned"])
def test_released_slot_reuse_has_no_stale_state(model, how):
    x, y, z = make_cond(30, 10), make_cond(90, 11), make_cond(22, 12)
    ref_z = decode_alone(model, z)

    state = ArSlots(model, 2)
    sx, _ = state.prefill(0, x), state.prefill(1, y)
    for _ in range(sx if how == "finished" else 4):
        state.decode_step([0, 1])
    state.release(0)
    assert state.position(0) == 0 and state.num_steps(0) == 0
    with pytest.raises(ValueError, match="not prefilled"):
        state.decode_step([0])
    if how == "poisoned":  # garbage left in the freed slot must not matter
        state.cache.k[:, 0].fill_(float("nan"))
        state.cache.v[:, 0].fill_(float("inf"))

    sz = state.prefill(0, z)
    got = []
    for _ in range(sz):
        got.append(state.decode_step([1, 0])[1].clone())
    assert max_diff(stack_frames(got, 22), ref_z) <= TOL


# 3 ---------------------------------------------------------------------------


def test_forward_train_reproduces_decoding(model):
    lengths = [25, 9, 37]
    conds = [make_cond(f, 20 + i) for i, f in enumerate(lengths)]
    decoded = [decode_alone(model, c) for c in conds]  # [D, F_i]

    F = max(lengths)
    cond = torch.zeros(len(lengths), CFG.cond_dim, F)
    target = torch.zeros(len(lengths), CFG.latent_dim, F)
    mask = torch.zeros(len(lengths), F, dtype=torch.bool)
    for b, (c, d) in enumerate(zip(conds, decoded)):
        n = c.shape[1]
        cond[b, :, :n], target[b, :, :n], mask[b, :n] = c, d, True
        cond[b, :, n:] = 7.0  # padding garbage must not matter
        target[b, :, n:] = -5.0

    with torch.no_grad():
        pred = model.forward_train(cond, mask, target)  # [B, D, F]
    assert pred.shape == target.shape
    for b, n in enumerate(lengths):
        assert max_diff(pred[b, :, :n], decoded[b]) <= TOL
    assert pred[~mask[:, None].expand_as(pred)].abs().max() == 0


def test_forward_train_is_causal_and_trainable(model):
    cond, target = make_cond(30, 30)[None], torch.randn(1, CFG.latent_dim, 30)
    mask = torch.ones(1, 30, dtype=torch.bool)
    with torch.no_grad():
        a = model.forward_train(cond, mask, target)
        t2 = target.clone()
        t2[..., 15:] += 1.0  # frames of steps >= 5 change -> preds of steps <= 5 unchanged
        b = model.forward_train(cond, mask, t2)
    assert max_diff(a[..., :18], b[..., :18]) <= TOL
    assert max_diff(a[..., 18:], b[..., 18:]) > 1e-3

    m = ArAcousticModel(ArConfig(d_model=32, n_heads=2, n_layers=1, max_steps=16)).train()
    loss = m.forward_train(cond, mask, target).square().mean()
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())


# 4 ---------------------------------------------------------------------------


def test_encode_condition_padding_invariance(model):
    lengths = [7, 30, 19]
    conds = [make_cond(f, 40 + i) for i, f in enumerate(lengths)]
    F = max(lengths)
    batch = torch.randn(len(lengths), CFG.cond_dim, F) * 100  # garbage in the padding
    mask = torch.zeros(len(lengths), F, dtype=torch.bool)
    for b, c in enumerate(conds):
        batch[b, :, : c.shape[1]], mask[b, : c.shape[1]] = c, True
    with torch.no_grad():
        steps, step_mask, out = model.encode_condition_batch(batch, mask)  # [B, S, d], [B, S], [B, S, K*D]
        for b, c in enumerate(conds):
            alone, alone_out = model.encode_condition(c)  # [S_b, d], [S_b, K*D]
            S = CFG.num_steps(c.shape[1])
            assert alone.shape == (S, CFG.d_model)
            assert alone_out.shape == (S, CFG.frames_per_step * CFG.latent_dim)
            assert step_mask[b].sum().item() == S and step_mask[b, :S].all()
            assert max_diff(steps[b, :S], alone) <= TOL
            assert max_diff(out[b, :S], alone_out) <= TOL
            if S < out.shape[1]:  # steps past a shorter sentence's end read out as zero
                assert out[b, S:].abs().max().item() == 0.0


def test_decode_step_slot_order(model):
    conds = [make_cond(24, 50 + i) for i in range(4)]
    perm = [2, 0, 3, 1]

    def run(orders):
        state = ArSlots(model, 4)
        for s, c in enumerate(conds):
            state.prefill(s, c)
        return [state.decode_step(o).clone() for o in orders]

    ref = run([[0, 1, 2, 3]] * 8)
    got = run([perm, torch.tensor(perm[::-1])] * 4)  # lists and tensors, any order
    for t, (r, g) in enumerate(zip(ref, got)):
        order = perm if t % 2 == 0 else perm[::-1]
        assert max_diff(g, r[order]) <= TOL


# 5 ---------------------------------------------------------------------------


def test_shapes_positions_and_limits():
    torch.manual_seed(1)
    cfg = ArConfig(d_model=32, n_heads=2, n_layers=2, max_steps=4, cond_dim=8, latent_dim=6)
    m = ArAcousticModel(cfg).eval()
    state = ArSlots(m, 3)

    with pytest.raises(CacheCapacityError, match="max_steps"):
        state.prefill(0, torch.randn(8, 13))  # S = 5 > 4
    with pytest.raises(CacheCapacityError, match="max_steps"):
        m.forward_train(torch.randn(1, 8, 13), torch.ones(1, 13, dtype=torch.bool), torch.randn(1, 6, 13))

    assert state.prefill(0, torch.randn(8, 12)) == 4 and state.prefill(2, torch.randn(8, 4)) == 2
    for t in range(2):
        out = state.decode_step([2, 0])
        assert out.shape == (2, 3, 6)
        assert (state.position(0), state.position(2)) == (t + 1, t + 1)
    with pytest.raises(ValueError, match="last step"):
        state.decode_step([2])  # slot 2 finished its 2 steps
    for _ in range(2):
        state.decode_step([0])
    with pytest.raises(CacheCapacityError, match="max_steps=4"):
        state.decode_step([0])  # position 4: static cache full
    with pytest.raises(ValueError, match="duplicate"):
        state.decode_step([0, 0])
    with pytest.raises(IndexError, match="out of range"):
        state.decode_step([3])
    with pytest.raises(ValueError, match="not prefilled"):
        state.decode_step([1])
    with pytest.raises(ValueError, match="cond must be"):
        state.prefill(1, torch.randn(7, 5))


# 6 ---------------------------------------------------------------------------


def test_serving_state_lives_outside_the_module(model):
    """Two serving states on one module (the engine's slots and a private offline decode) do not
    disturb each other, and the module itself holds no per-slot state."""
    x, y = make_cond(40, 60), make_cond(27, 61)
    ref_x, ref_y = decode_alone(model, x), decode_alone(model, y)
    engine_slots, private = ArSlots(model, 2), ArSlots(model, 1)
    sx, sy = engine_slots.prefill(1, x), private.prefill(0, y)
    got_x, got_y = [], []
    for t in range(max(sx, sy)):  # interleaved steps
        if t < sx:
            got_x.append(engine_slots.decode_step([1])[0].clone())
        if t < sy:
            got_y.append(private.decode_step([0])[0].clone())
    assert max_diff(stack_frames(got_x, 40), ref_x) <= TOL
    assert max_diff(stack_frames(got_y, 27), ref_y) <= TOL
    assert max_diff(decode_offline(model, [y])[0], ref_y) <= TOL
    assert not [n for n, _ in model.named_buffers() if n not in ("rope_cos", "rope_sin")]
    assert engine_slots.num_frames(1) == 40 and private.num_frames(0) == 27
