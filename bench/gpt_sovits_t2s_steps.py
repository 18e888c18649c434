"""GPT-SoVITS v2 T2S decode-step timing: median ms per batched decode step on T2SSlots, for a
random-weight model of the real s1v2 size (dim 512, 16 heads, 24 layers, ~77.6 M parameters).

    python bench/gpt_sovits_t2s_steps.py [--steps N] [--batch 1 8 32 64] [--threads T] [--device cpu]

Every slot is prefilled with its own prompt (--phones phones + BERT features, --prompt semantic
tokens), then all slots decode together (in reverse slot order). The EOS read-out row is zeroed
so that a random model does not stop early: every slot runs all the timed steps. Sampling is
upstream's default request (top_k 15, repetition penalty 1.35).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream_server.models.gpt_sovits.sampling import SamplingParams  # noqa: E402
from stream_server.models.gpt_sovits.t2s_checkpoint import random_t2s  # noqa: E402
from stream_server.models.gpt_sovits.t2s_model import T2SModel  # noqa: E402
from stream_server.models.gpt_sovits.t2s_slots import T2SSlots  # noqa: E402


def time_steps(model: T2SModel, bs: int, n_phones: int, n_prompt: int, steps: int, warmup: int,
               device: str) -> tuple[float, float]:
    """-> (median ms per decode step, mean ms per prefill) for ``bs`` slots decoding together."""
    cfg, gen = model.cfg, torch.Generator().manual_seed(bs)
    budget = warmup + steps
    slots = T2SSlots(model, bs, max_len=n_phones + n_prompt + budget, device=device)
    t0 = time.perf_counter()
    for s in range(bs):
        phones = torch.randint(0, cfg.phoneme_vocab_size, (n_phones,), generator=gen)
        bert = torch.randn(cfg.bert_dim, n_phones, generator=gen)
        prompt = torch.randint(0, cfg.eos, (n_prompt,), generator=gen)
        slots.prefill(s, phones, bert, prompt, SamplingParams(), seed=s, early_stop_num=budget - 1)
    prefill_ms = (time.perf_counter() - t0) * 1e3 / bs
    order = list(range(bs))[::-1]
    ms = []
    for i in range(budget):
        _sync(device)
        t0 = time.perf_counter()
        _, finished = slots.decode_step(order)
        _sync(device)
        if i >= warmup:
            ms.append((time.perf_counter() - t0) * 1e3)
        assert not finished.any() or i == budget - 1, "a slot stopped early"
    ms.sort()
    return ms[len(ms) // 2], prefill_ms


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=16, help="timed decode steps per batch size")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--phones", type=int, default=100)
    ap.add_argument("--prompt", type=int, default=75)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = random_t2s(device=args.device)
    with torch.no_grad():
        model.ar_predict_layer.weight[model.cfg.eos].zero_()  # random weights: never stop early
    n_params = sum(p.numel() for p in model.parameters())
    print(f"T2S s1v2 size, random weights: {n_params:,} parameters; {args.device}, "
          f"{torch.get_num_threads()} threads; prompt {args.phones} phones + {args.prompt} tokens; "
          f"{args.steps} timed steps")
    time_steps(model, 1, args.phones, args.prompt, 1, 1, args.device)  # warm-up: first calls are slow
    for bs in args.batch:
        step_ms, prefill_ms = time_steps(model, bs, args.phones, args.prompt, args.steps, args.warmup, args.device)
        print(f"batch {bs:3d}: median {step_ms:8.2f} ms/step ({step_ms / bs:6.2f} ms/seq-step, "
              f"{1e3 * bs / step_ms:7.1f} tokens/s); prefill {prefill_ms:7.1f} ms/request")


if __name__ == "__main__":
    main()
