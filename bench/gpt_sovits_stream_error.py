"""How far streamed (chunked) SoVITS decoding is from the whole-sentence decode, by context size.

    python bench/gpt_sovits_stream_error.py [tiny|real|both] [TOKENS]

Chunks of 6, 12, then 24 tokens (the engine's), noise_scale 0. For each (left, right) context in
tokens: SNR of streamed vs whole (dB), max abs error, the same error against how much the audio
changes when the content changes (``content SNR``: whole vs a decode of other random tokens;
random-weight models make audio that depends little on the tokens, so plain SNR flatters them),
and the largest extra sample-to-sample jump at a chunk join relative to the largest jump anywhere
in the whole decode. Models: the tiny fixture checkpoint and a random real-size s2 v2.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream_server.engine.chunking import chunk_bounds  # noqa: E402
from stream_server.models.gpt_sovits.sovits import SovitsV2, load_sovits, random_sovits  # noqa: E402
from stream_server.models.gpt_sovits.sovits_checkpoint import SovitsConfig  # noqa: E402
from stream_server.models.gpt_sovits.sovits_stream import (  # noqa: E402
    StreamContext,
    chunk_config,
    decode_chunks,
    decode_window,
    snr_db,
)

# (left, right) in tokens; 1000 = all the tokens so far
CONTEXTS = [(0, 0), (4, 4), (8, 8), (16, 16), (24, 24), (24, 8), (32, 8), (64, 0), (64, 4), (64, 8),
            (64, 16), (64, 24), (1000, 8)]


def shared_dir() -> Path:
    env = os.environ.get("STREAM_SERVER_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")]
    for path in candidates:
        if path.is_dir():
            return path
    raise SystemExit("no shared folder: set STREAM_SERVER_SHARED")


def join_jump(whole: torch.Tensor, streamed: torch.Tensor, joins: list[int]) -> float:
    dw = whole[1:] - whole[:-1]
    ds = streamed[1:] - streamed[:-1]
    extra = max(float((ds[j - 1] - dw[j - 1]).abs()) for j in joins) if joins else 0.0
    return extra / float(dw.abs().max())


def measure(name: str, model: SovitsV2, tokens: int, spec: torch.Tensor) -> None:
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, model.cfg.codebook_size, (tokens,), generator=g)
    other = torch.randint(0, model.cfg.codebook_size, (tokens,), generator=g)
    phones = torch.randint(0, model.cfg.n_symbols, (tokens * 2 // 3,), generator=g)
    cond = model.condition(phones, [spec])
    whole = decode_window(model, codes, cond, window_start=0, keep=(0, tokens))
    varied = decode_window(model, other, cond, window_start=0, keep=(0, tokens))
    content = float((whole - varied).double().pow(2).sum())
    print(f"\n{name}: {tokens} tokens, whole-decode peak {float(whole.abs().max()):.4f}, "
          f"content-change SNR {snr_db(whole, varied):.1f} dB")
    print("left right |  SNR dB | max abs err | content SNR dB | join jump | s")
    for left, right in CONTEXTS:
        cfg = chunk_config(StreamContext(left, right))
        joins = [s * model.samples_per_token for s, _ in chunk_bounds(tokens, cfg)[1:]]
        t = time.perf_counter()
        streamed = torch.cat(decode_chunks(model, codes, cond, cfg))
        took = time.perf_counter() - t
        err = (whole - streamed).double().pow(2).sum()
        csnr = float("inf") if err == 0 else 10 * np.log10(content / float(err))
        lname = "all" if left >= tokens else str(left)
        max_err = float((whole - streamed).abs().max())
        print(f"{lname:>4} {right:>5} | {snr_db(whole, streamed):7.1f} | {max_err:11.2e} | "
              f"{csnr:14.1f} | {join_jump(whole, streamed, joins):9.2e} | {took:.1f}", flush=True)


def main() -> None:
    torch.set_num_threads(1)
    which = sys.argv[1] if len(sys.argv) > 1 else "both"
    tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    fixtures = shared_dir() / "fixtures" / "gpt_sovits"
    spec = torch.from_numpy(np.load(fixtures / "sovits_tiny_io.npz")["refer_spec"])
    if which in ("tiny", "both"):
        measure("tiny fixture model", load_sovits(fixtures / "sovits_tiny.pth"), tokens, spec)
    if which in ("real", "both"):
        measure("random real-size s2 v2 (seed 0)", random_sovits(SovitsConfig(), seed=0), tokens, spec)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
