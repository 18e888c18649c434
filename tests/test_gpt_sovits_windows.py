"""SoVITS windows of several sentences decoded as one batch (sovits_windows.py) equal each alone."""

from __future__ import annotations

import pytest
import torch

from gpt_sovits_assets import gpt_sovits_fixtures
from stream_server.models.gpt_sovits.sovits import Conditioning, LatentNoise, load_sovits, random_sovits
from stream_server.models.gpt_sovits.sovits_checkpoint import SovitsConfig
from stream_server.models.gpt_sovits.sovits_stream import decode_window
from stream_server.models.gpt_sovits.sovits_windows import WindowJob, decode_windows, padded_text

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py: why

W = 14  # tokens per window: the engine's first chunk (6 kept + 8 ahead)
# (phones, reference seed, window_start, keep, speed): rows of different sentence lengths and voices,
# at a sentence's start, middle and end (different flow / generator spans), two speeds
ROWS = [
    (40, 1, 0, (0, 6), 1.0),
    (25, 2, 0, (0, 6), 1.0),  # same spans as the first: stacked in one group
    (33, 3, 30, (34, 40), 1.0),
    (18, 4, 10, (18, 24), 1.0),  # the sentence ends with the window
    (29, 5, 0, (6, 14), 1.25),
    (12, 6, 20, (22, 22), 1.0),  # keeps nothing
]


def _jobs(model, seed: int = 0) -> tuple[torch.Tensor, list[WindowJob]]:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, model.cfg.codebook_size, (len(ROWS), W), generator=g)
    jobs = []
    for n_phones, ref, start, keep, speed in ROWS:
        phones = torch.randint(0, model.cfg.n_symbols, (n_phones,), generator=g)
        spec = torch.rand(1025, 40, generator=torch.Generator().manual_seed(ref)) * 10
        noise = LatentNoise(torch.Generator().manual_seed(100 + ref), model.cfg.inter_channels)
        jobs.append(WindowJob(model.condition(phones, [spec]), start, keep, noise, speed))
    return codes, jobs


def _fresh_noise(job: WindowJob, ref: int) -> WindowJob:
    """The same noise stream, drawn anew (a LatentNoise caches what it drew)."""
    noise = LatentNoise(torch.Generator().manual_seed(100 + ref), job.noise.channels if job.noise else 192)
    return WindowJob(job.cond, job.window_start, job.keep, noise, job.speed)


def _max_diff_batched_vs_alone(model) -> float:
    codes, jobs = _jobs(model)
    batched = decode_windows(model, codes, jobs, noise_scale=0.5)
    worst = 0.0
    for row, (job, spec) in enumerate(zip(jobs, ROWS)):
        alone = _fresh_noise(job, spec[1])
        one = decode_window(model, codes[row], alone.cond, window_start=alone.window_start, keep=alone.keep,
                            noise_scale=0.5, noise=alone.noise, speed=alone.speed)
        assert batched[row].shape == one.shape
        if one.numel():
            worst = max(worst, float((batched[row] - one).abs().max()))
    return worst


def test_batched_windows_equal_each_alone_tiny():
    """Measured: max abs difference 1.2e-9 (one thread)."""
    model = load_sovits(gpt_sovits_fixtures() / "sovits_tiny.pth")
    assert _max_diff_batched_vs_alone(model) <= 1e-6


@pytest.mark.slow
def test_batched_windows_equal_each_alone_real_size():
    """Random weights, real s2 v2 dimensions. Measured: max abs difference 2.8e-8 (one thread)."""
    assert _max_diff_batched_vs_alone(random_sovits(SovitsConfig(), seed=0)) <= 1e-5


def test_kept_lengths_follow_each_rows_span_and_speed():
    model = load_sovits(gpt_sovits_fixtures() / "sovits_tiny.pth")
    codes, jobs = _jobs(model)
    out = decode_windows(model, codes, jobs, noise_scale=0.5)
    hop = model.cfg.samples_per_token
    assert [len(a) for a in out[:4]] == [6 * hop, 6 * hop, 6 * hop, 6 * hop]
    assert len(out[4]) < 8 * hop and len(out[5]) == 0  # speed 1.25 is shorter; an empty keep is empty


def test_phones_of_different_lengths_are_padded_and_masked():
    a, b = torch.ones(1, 4, 3), torch.ones(1, 4, 5)
    ge = torch.zeros(1, 512, 1)
    text, mask = padded_text([Conditioning(ge, a), Conditioning(ge, b)])
    assert text.shape == (2, 4, 5) and float(text[0, :, 3:].abs().sum()) == 0.0
    assert mask is not None and mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert padded_text([Conditioning(ge, a), Conditioning(ge, a)])[1] is None


def test_noise_scale_needs_every_rows_noise():
    model = load_sovits(gpt_sovits_fixtures() / "sovits_tiny.pth")
    codes, jobs = _jobs(model)
    jobs[2] = WindowJob(jobs[2].cond, jobs[2].window_start, jobs[2].keep, None, 1.0)
    with pytest.raises(ValueError, match="LatentNoise"):
        decode_windows(model, codes, jobs, noise_scale=0.5)
