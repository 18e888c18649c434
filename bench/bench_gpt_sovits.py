"""GPT-SoVITS v2 serving benchmark: continuous batching against one request at a time (api_v2's
way), on the engine with a GPT-SoVITS voice of the real size (random weights).

    python bench/bench_gpt_sovits.py                  # 1, 4, 16 sessions, real s1v2 + s2 v2 sizes
    python bench/bench_gpt_sovits.py --sessions 1,4 --tokens 75
    python bench/bench_gpt_sovits.py --smoke          # CI: tiny models, 1 and 2 sessions
    python bench/bench_gpt_sovits.py --sessions 16 --modes batched   # the engine alone (issue #21)

Each session asks for one sentence (English, a different one each), all within `--stagger`
seconds. The T2S is greedy (top_k 1) with its EOS read-out zeroed, so every sentence runs to the
same `--tokens` (its early stop) whatever else is in the batch, and both modes make exactly the
same tokens. The batched engine has as many slots as sessions; the other has one.

Figures: first audio (submit -> first audio chunk) p50/p95, and aggregate semantic tokens per
second of wall time (25 tokens = 1 s of audio), for both modes and their ratio.
"""

from __future__ import annotations

import argparse
import queue
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream_server.engine.engine import Engine, EngineConfig  # noqa: E402
from stream_server.engine.requests import AudioEvent, ErrorEvent, SentenceRequest, SynthesisOptions  # noqa: E402
from stream_server.engine.scheduler import SchedulerConfig  # noqa: E402
from stream_server.models.gpt_sovits.backend import GptSovitsBackend  # noqa: E402
from stream_server.models.gpt_sovits.frontend import TextFrontend  # noqa: E402
from stream_server.models.gpt_sovits.reference import Reference  # noqa: E402
from stream_server.models.gpt_sovits.references import ReferenceBook  # noqa: E402
from stream_server.models.gpt_sovits.sovits import random_sovits  # noqa: E402
from stream_server.models.gpt_sovits.sovits_checkpoint import SovitsConfig  # noqa: E402
from stream_server.models.gpt_sovits.t2s_checkpoint import S1V2_CONFIG, random_t2s  # noqa: E402
from stream_server.models.gpt_sovits.t2s_model import T2SConfig  # noqa: E402
from stream_server.train.corpus import training_sentences  # noqa: E402

TINY_T2S = T2SConfig(dim=64, n_heads=4, n_layers=3)
TINY_SOVITS = SovitsConfig(filter_channels=64, n_layers=2, resblock_kernel_sizes=(3,),
                           resblock_dilation_sizes=((1, 3, 5),), upsample_initial_channel=64)


def build(tiny: bool, slots: int, tokens: int) -> GptSovitsBackend:
    t2s = random_t2s(TINY_T2S if tiny else S1V2_CONFIG)
    with torch.no_grad():
        t2s.ar_predict_layer.weight[t2s.cfg.eos].zero_()  # random weights: never stop before --tokens
    sovits = random_sovits(TINY_SOVITS if tiny else SovitsConfig())
    frontend = TextFrontend()
    frontend.warm({"en"})
    g = torch.Generator().manual_seed(0)
    prompt = frontend.phones("This is the reference clip of the voice.", "en")
    style = sovits.style(sovits.spectrogram(torch.randn(32000 * 4, generator=g) * 0.1))
    reference = Reference("bench", torch.randint(0, 1024, (100,), generator=g), list(prompt.phone_ids),
                          prompt.bert, style)  # 4 s of reference: 100 prompt tokens
    book = ReferenceBook(None, sovits)
    book.use_default(reference)
    return GptSovitsBackend("gsv", t2s, sovits, frontend, book, "en", slots, max_len=512,
                            weight_files=(), max_sec=(tokens - 1) / 25)


def run_mode(backend: GptSovitsBackend, texts: list[str], stagger: float) -> dict:
    backend.synthesize_offline("Warming up the voice.", SynthesisOptions(top_k=1))  # lazy loads, first calls
    engine = Engine({"gsv": backend}, EngineConfig(SchedulerConfig(max_prefills_per_step=1)))
    events: queue.Queue = queue.Queue()
    engine.start(lambda batch: [events.put((time.perf_counter(), e)) for e in batch])
    submitted: dict[int, float] = {}
    first: dict[int, float] = {}
    samples = 0
    t0 = time.perf_counter()
    try:
        for i, text in enumerate(texts):
            while time.perf_counter() < t0 + stagger * i / max(1, len(texts)):
                time.sleep(0.001)
            r = SentenceRequest(f"s{i}", "default", text, "gsv", SynthesisOptions(seed=i, top_k=1), 0)
            submitted[r.request_id] = time.perf_counter()
            engine.submit(r)
        done = 0
        while done < len(texts):
            at, ev = events.get(timeout=600)
            if isinstance(ev, ErrorEvent):
                raise SystemExit(f"synthesis failed: {ev.message}")
            if isinstance(ev, AudioEvent):
                first.setdefault(ev.request_id, at)
                samples += len(ev.pcm)
                done += ev.last
        wall = time.perf_counter() - t0
    finally:
        engine.stop()
    latencies = sorted(first[r] - submitted[r] for r in submitted)
    tokens = samples / backend.hop_length
    return {"p50": 1000 * latencies[len(latencies) // 2],
            "p95": 1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
            "tokens_per_s": tokens / wall, "wall": wall,
            "decode_batch": engine.stats.decode_rows / max(1, engine.stats.decode_steps)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default="1,4,16")
    ap.add_argument("--tokens", type=int, default=75, help="semantic tokens per sentence (25 = 1 s)")
    ap.add_argument("--stagger", type=float, default=0.5, help="sessions arrive over this many seconds")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--modes", default="batched,one-at-a-time", help="which of batched, one-at-a-time to run")
    ap.add_argument("--smoke", action="store_true", help="CI: tiny random models, 1 and 2 sessions")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    counts = [1, 2] if args.smoke else [int(x) for x in args.sessions.split(",")]
    tokens = 25 if args.smoke else args.tokens
    size = "tiny random" if args.smoke else "real-size random (T2S 77.6 M params, SoVITS v2 s2)"
    print(f"GPT-SoVITS v2 {size}; {tokens} tokens per sentence; {torch.get_num_threads()} torch threads", flush=True)
    rows = []
    for n in counts:
        texts = training_sentences(n, seed=100 + n)[:n]
        r = {}
        for mode, slots in (("batched", n), ("one-at-a-time", 1)):
            if mode not in args.modes.split(","):
                continue
            r[mode] = run_mode(build(args.smoke, slots, tokens), texts, args.stagger)
            m = r[mode]
            print(f"{mode:>14} sessions={n:<3} first audio p50={m['p50']:8.1f} ms p95={m['p95']:8.1f} ms | "
                  f"{m['tokens_per_s']:7.1f} tokens/s ({m['tokens_per_s'] / 25:5.2f} s of audio per s) | "
                  f"mean decode batch {m['decode_batch']:.2f} | {m['wall']:.1f} s", flush=True)
        rows.append((n, r))
    print("\nratios one-at-a-time / batched (>1: continuous batching is better):")
    for n, r in rows:
        if len(r) < 2:
            continue
        b, s = r["batched"], r["one-at-a-time"]
        print(f"  sessions={n:<3} first audio p50 x{s['p50'] / b['p50']:.2f} p95 x{s['p95'] / b['p95']:.2f} | "
              f"tokens/s x{b['tokens_per_s'] / s['tokens_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
