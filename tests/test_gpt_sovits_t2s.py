"""GPT-SoVITS v2 T2S (s1/GPT), tested against the reference fixtures computed by upstream's own
code (shared/fixtures/gpt_sovits/README.md). So far: the static-cache additions it needs."""

from __future__ import annotations

import pytest
import torch

from stream_server.engine.kv_cache import CacheCapacityError, StaticKVCache


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
