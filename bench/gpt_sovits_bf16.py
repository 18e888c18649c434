"""GPT-SoVITS in bfloat16 against float32 on the CPU: numerics first, then time.

    python bench/gpt_sovits_bf16.py            # tiny fixtures + real-size random weights
    python bench/gpt_sovits_bf16.py --no-time  # numerics only

T2S: logits of the prefill (max abs difference, and relative to the largest |logit|), and greedy
decoding (top_k 1) of the same request in both precisions: the tokens up to the first difference,
and the logits' largest difference while the two still agree. With the tiny fixture the greedy
tokens are also compared with upstream's (t2s_tiny_io.npz). SoVITS: the same windows decoded in
both (noise on), max abs difference and SNR of the audio. Time: a 16-slot T2S decode step and a
batch of 4 SoVITS windows of 74 tokens, median of a few runs (a busy machine makes these noisy).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gpt_sovits_assets import gpt_sovits_fixtures  # noqa: E402
from stream_server.models.gpt_sovits.sampling import SamplingParams  # noqa: E402
from stream_server.models.gpt_sovits.sovits import LatentNoise, SovitsV2, load_sovits, random_sovits  # noqa: E402
from stream_server.models.gpt_sovits.sovits_checkpoint import SovitsConfig  # noqa: E402
from stream_server.models.gpt_sovits.sovits_stream import snr_db  # noqa: E402
from stream_server.models.gpt_sovits.sovits_windows import WindowJob, decode_windows  # noqa: E402
from stream_server.models.gpt_sovits.t2s_checkpoint import S1V2_CONFIG, load_t2s, random_t2s  # noqa: E402
from stream_server.models.gpt_sovits.t2s_model import T2SModel  # noqa: E402
from stream_server.models.gpt_sovits.t2s_slots import T2SSlots  # noqa: E402

BF16 = torch.bfloat16
GREEDY = SamplingParams(top_k=1, top_p=1.0, temperature=1.0)


def greedy(model: T2SModel, dtype: torch.dtype, req: tuple, steps: int) -> tuple[list[int], list[torch.Tensor]]:
    """One request decoded greedily -> its tokens and the raw logits each was taken from."""
    phones, bert, prompt = req
    slots = T2SSlots(model, 1, max_len=phones.numel() + prompt.numel() + steps + 1, dtype=dtype)
    slots.prefill(0, phones, bert.to(dtype), prompt, GREEDY, seed=0, early_stop_num=steps - 1)
    logits = []
    while True:
        logits.append(slots.last_logits(0))
        if slots.decode_step([0]).finished[0]:
            return slots.generated(0), logits


def t2s_report(name: str, model: T2SModel, req: tuple, steps: int, upstream: list[int] | None = None) -> None:
    low = copy.deepcopy(model).to(BF16)
    tokens32, logits32 = greedy(model, torch.float32, req, steps)
    tokens16, logits16 = greedy(low, BF16, req, steps)
    agree = next((i for i, (a, b) in enumerate(zip(tokens32, tokens16)) if a != b), min(len(tokens32), len(tokens16)))
    first = (logits32[0] - logits16[0]).abs().max().item()
    scale = logits32[0].abs().max().item()
    during = max((a - b).abs().max().item() for a, b in zip(logits32[: agree + 1], logits16[: agree + 1]))
    print(f"T2S {name}: prefill logits max |diff| {first:.3g} (max |logit| {scale:.3g}, rel {first / scale:.2%}); "
          f"greedy tokens agree for {agree} of {len(tokens32)} (fp32) / {len(tokens16)} (bf16); "
          f"logits max |diff| while agreeing {during:.3g}")
    if upstream is not None:
        same = sum(a == b for a, b in zip(tokens16, upstream))
        print(f"    bf16 greedy vs upstream's fp32 tokens: {same} of {len(upstream)} equal, fp32: "
              f"{sum(a == b for a, b in zip(tokens32, upstream))} of {len(upstream)}")


def sovits_jobs(model: SovitsV2, rows: int, width: int, dtype: torch.dtype) -> tuple[torch.Tensor, list[WindowJob]]:
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, model.cfg.codebook_size, (rows, width), generator=g)
    jobs = []
    for r in range(rows):
        phones = torch.randint(0, model.cfg.n_symbols, (40,), generator=g)
        cond = model.condition(phones, [torch.rand(1025, 60, generator=g) * 10])
        cond.ge, cond.text = cond.ge.to(dtype), cond.text.to(dtype)
        noise = LatentNoise(torch.Generator().manual_seed(r), model.cfg.inter_channels)
        jobs.append(WindowJob(cond, 0, (max(0, width - 32), max(0, width - 8)), noise, 1.0))  # a 24-token chunk
    return codes, jobs


def sovits_report(name: str, model: SovitsV2) -> None:
    codes, jobs32 = sovits_jobs(model, 4, 74, torch.float32)
    _, jobs16 = sovits_jobs(model, 4, 74, BF16)
    ref = decode_windows(model, codes, jobs32, 0.5)
    dec_only = copy.deepcopy(model)
    dec_only.dec.to(BF16)
    for what, low, jobs in (("all bf16", copy.deepcopy(model).to(BF16), jobs16),
                            ("generator only bf16", dec_only, jobs32)):
        got = decode_windows(low, codes, jobs, 0.5)
        diff = max((a - b.float()).abs().max().item() for a, b in zip(ref, got))
        peak = max(a.abs().max().item() for a in ref)
        snr = min(snr_db(a, b.float()) for a, b in zip(ref, got))
        print(f"SoVITS {name}, {what}: 4 windows of 74 tokens, audio max |diff| {diff:.3g} (peak {peak:.3g}), "
              f"worst SNR {snr:.1f} dB")


def median_ms(fn, runs: int = 5) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def t2s_step_ms(model: T2SModel, dtype: torch.dtype, slots: int = 16) -> float:
    s = T2SSlots(model, slots, max_len=512, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    for i in range(slots):
        phones = torch.randint(0, 700, (60,), generator=g)
        s.prefill(i, phones, torch.zeros(1024, 60, dtype=dtype), torch.randint(0, 1024, (100,), generator=g),
                  GREEDY, seed=i, early_stop_num=100)
    s.decode_step(list(range(slots)))
    return median_ms(lambda: s.decode_step(list(range(slots))))


def timing(t2s: T2SModel, sovits: SovitsV2) -> None:
    t2s16, sovits16 = copy.deepcopy(t2s).to(BF16), copy.deepcopy(sovits).to(BF16)
    print(f"time T2S decode step, 16 slots: fp32 {t2s_step_ms(t2s, torch.float32):.1f} ms, "
          f"bf16 {t2s_step_ms(t2s16, BF16):.1f} ms")
    c32, j32 = sovits_jobs(sovits, 4, 74, torch.float32)
    c16, j16 = sovits_jobs(sovits, 4, 74, BF16)
    print(f"time SoVITS 4 windows x 74 tokens: fp32 {median_ms(lambda: decode_windows(sovits, c32, j32), 3):.0f} ms, "
          f"bf16 {median_ms(lambda: decode_windows(sovits16, c16, j16), 3):.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-time", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    io = np.load(gpt_sovits_fixtures() / "t2s_tiny_io.npz")
    tiny_req = (torch.from_numpy(io["phones"][0]), torch.zeros(1024, io["phones"].shape[1]),
                torch.from_numpy(io["prompt"][0]))
    upstream = [int(t) for t in io["tokens_zero_bert"][io["prompt"].shape[1]:]]
    t2s_report("tiny fixture", load_t2s(gpt_sovits_fixtures() / "t2s_tiny.ckpt"), tiny_req, 61, upstream)
    real = random_t2s(S1V2_CONFIG)
    real.ar_predict_layer.weight[real.cfg.eos].zero_()  # random weights: no early EOS (as bench_gpt_sovits)
    g = torch.Generator().manual_seed(1)
    real_req = (torch.randint(0, 700, (60,), generator=g), torch.randn(1024, 60, generator=g) * 0.1,
                torch.randint(0, 1024, (100,), generator=g))
    t2s_report("real size, random", real, real_req, 75)
    sovits = random_sovits(SovitsConfig())
    sovits_report("tiny fixture", load_sovits(gpt_sovits_fixtures() / "sovits_tiny.pth"))
    sovits_report("real size, random", sovits)
    if not args.no_time:
        timing(real, sovits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
