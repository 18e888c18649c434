"""SoVITS v2 vocoding time per streamed chunk on CPU, random weights of the real s2 v2 size.

    python bench/gpt_sovits_vocoder.py [THREADS]

For chunks of 6, 12, 24 and 48 tokens in the middle of a sentence, decoded with the default
context (``default_context``: 64 tokens left, 8 right), prints the best-of-5 ms (the least
disturbed by other processes on a shared machine) of ``decode_window``
and its parts (enc_p over the window; flow and generator over the frames the kept audio needs),
and the real-time factor (compute time / audio time; 1 token = 40 ms of audio); then the same with
``generator_margin=6`` (approximate, see decode_window) and a whole-sentence decode.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream_server.models.gpt_sovits.sovits import random_sovits  # noqa: E402
from stream_server.models.gpt_sovits.sovits_checkpoint import SovitsConfig  # noqa: E402
from stream_server.models.gpt_sovits.sovits_stream import decode_window, default_context  # noqa: E402

CHUNKS = (6, 12, 24, 48)
REPEATS = 5


def best_ms(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(threads)
    model = random_sovits(SovitsConfig(), seed=0)
    ctx = default_context()
    g = torch.Generator().manual_seed(0)
    tokens = ctx.left + max(CHUNKS) + ctx.right
    codes = torch.randint(0, 1024, (tokens,), generator=g)
    phones = torch.randint(0, 732, (tokens * 2 // 3,), generator=g)
    spec = torch.rand(1025, 200, generator=g)
    cond = model.condition(phones, [spec])
    dec_reach, flow_reach = model.dec.receptive_field(), model.flow.receptive_field()
    print(f"random real-size s2 v2, CPU, {threads} thread(s); "
          f"context left {ctx.left} right {ctx.right} tokens; "
          f"generator reach {dec_reach} frames, flow reach {flow_reach} frames")
    print("chunk tokens | window tokens | decode_window ms | enc_p ms | flow ms | generator ms "
          "| audio ms |  RTF | margin 6: ms |  RTF")
    for n in CHUNKS:
        start = ctx.left
        window = codes[: start + n + ctx.right]
        total = best_ms(lambda: decode_window(model, window, cond, window_start=0, keep=(start, start + n)))
        margin6 = best_ms(lambda: decode_window(model, window, cond, window_start=0,
                                                keep=(start, start + n), generator_margin=6))
        y = model.hidden(window, cond)
        enc = best_ms(lambda: model.hidden(window, cond))
        a, b = 2 * start, 2 * (start + n)
        d0, d1 = a - dec_reach, min(y.shape[-1], b + dec_reach)
        f0, f1 = d0 - flow_reach, min(y.shape[-1], d1 + flow_reach)
        flow = best_ms(lambda: model.latent(y[..., f0:f1], cond))
        z = model.latent(y[..., d0:d1], cond)
        gen = best_ms(lambda: model.dec(z, cond.ge))
        audio_ms = n * 1000 * model.samples_per_token / model.sample_rate
        print(f"{n:12d} | {window.numel():13d} | {total:16.0f} | {enc:8.0f} | {flow:7.0f} | {gen:12.0f} | "
              f"{audio_ms:8.0f} | {total / audio_ms:5.2f} | {margin6:9.0f} | {margin6 / audio_ms:6.2f}",
              flush=True)
    whole_ms = best_ms(lambda: model.decode(codes, phones, [spec], noise_scale=0), repeats=2)
    audio_ms = codes.numel() * 1000 * model.samples_per_token / model.sample_rate
    print(f"whole-sentence decode of {codes.numel()} tokens: {whole_ms:.0f} ms, "
          f"RTF {whole_ms / audio_ms:.2f}")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
