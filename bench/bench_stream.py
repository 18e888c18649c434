"""Streaming benchmark: first-audio latency and real-time factor over the native WebSocket.

For each session count it runs the same workload twice in one process, against two real servers:
continuous batching (many sentences in flight, batched steps) and one-sentence-at-a-time serving
(max_slots=1), and prints the figures and their ratios.

    python bench/bench_stream.py                 # 1, 4, 16 sessions, default (VITS) voice
    python bench/bench_stream.py --voice-kind ar # the AR acoustic model (random weights: mechanics)
    python bench/bench_stream.py --smoke         # tiny run for CI

First-audio latency: from sending the frame that completes a sentence (the frame after which the
server's segmenter can emit it) to receiving that sentence's first audio byte.
RTF: wall seconds / seconds of audio produced (below 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream_server.config import AppConfig, VoiceSection  # noqa: E402
from stream_server.server.background import BackgroundServer  # noqa: E402
from stream_server.text.segmenter import SentenceSegmenter  # noqa: E402

LINES = [
    "Welcome back, traveler. The road north is closed until the storm passes.",
    "I found three restaurants near you. The closest one opens at noon.",
    "Your package was delivered this morning. Would you like a photo of it?",
    "The blacksmith needs more iron ore. Bring him ten pieces before sunset.",
    "It will be sunny tomorrow with a high of twenty degrees. Enjoy your weekend!",
    "I set a timer for fifteen minutes. Anything else I can do for you?",
    "The castle gates open at dawn. Keep your sword ready and your eyes open.",
    "Sorry, I did not catch that. Could you say it again, please?",
]


@dataclass
class SessionResult:
    latencies: list[float] = field(default_factory=list)
    audio_seconds: float = 0.0


async def run_session(url: str, text: str, sample_rate: int) -> SessionResult:
    result = SessionResult()
    segmenter = SentenceSegmenter()
    completed_at: list[float] = []  # per sentence: when its completing frame was sent
    first_audio: dict[int, float] = {}
    async with websockets.connect(f"{url}/v1/tts/stream", max_size=None) as ws:
        json.loads(await ws.recv())
        for word in text.split(" "):  # LLM-like: one word per frame
            await ws.send(json.dumps({"type": "text", "text": word + " "}))
            now = time.perf_counter()
            completed_at += [now] * len(segmenter.push(word + " "))
        await ws.send(json.dumps({"type": "flush"}))
        completed_at += [time.perf_counter()] * len(segmenter.flush())
        current, samples = None, 0
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                first_audio.setdefault(current, time.perf_counter())
                samples += len(frame) // 2
                continue
            msg = json.loads(frame)
            if msg["type"] == "sentence_start":
                current = msg["index"]
            elif msg["type"] == "flushed":
                break
    result.latencies = [first_audio[i] - completed_at[i] for i in sorted(first_audio)]
    result.audio_seconds = samples / sample_rate
    return result


async def run_workload(url: str, sessions: int, sentences_per_session: int, rate: int):
    texts = [" ".join(LINES[(i + k) % len(LINES)] for k in range(sentences_per_session // 2 or 1))
             for i in range(sessions)]
    t0 = time.perf_counter()
    results = await asyncio.gather(*(run_session(url, t, rate) for t in texts))
    wall = time.perf_counter() - t0
    lat = sorted(x for r in results for x in r.latencies)
    audio = sum(r.audio_seconds for r in results)
    return {
        "p50_ms": 1000 * statistics.median(lat),
        "p95_ms": 1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))],
        "agg_rtf": wall / audio,
        "audio_s": audio,
        "wall_s": wall,
        "sentences": len(lat),
    }


def make_config(kind: str, slots: int, threads: int) -> AppConfig:
    cfg = AppConfig()
    cfg.server.port = 0
    cfg.engine.max_slots = slots
    cfg.engine.torch_threads = threads
    if kind == "ar":
        cfg.voices = {"joe": VoiceSection(kind="ar", allow_random_weights=True)}
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default="1,4,16")
    ap.add_argument("--sentences", type=int, default=4, help="sentences per session")
    ap.add_argument("--voice-kind", choices=["piper_vits", "ar"], default="piper_vits")
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="tiny CI run: 1 and 2 sessions")
    args = ap.parse_args()
    counts = [1, 2] if args.smoke else [int(x) for x in args.sessions.split(",")]
    sentences = 2 if args.smoke else args.sentences
    modes = {"batched": args.slots, "one-at-a-time": 1}
    table: dict[tuple[str, int], dict] = {}
    for mode, slots in modes.items():
        with BackgroundServer(make_config(args.voice_kind, slots, args.threads)) as srv:
            rate = srv.config.session.sample_rate
            for n in counts:
                r = table[(mode, n)] = asyncio.run(run_workload(srv.url, n, sentences, rate))
                stats = srv.services.engine.stats
                print(f"{mode:>14} sessions={n:<3} first-audio p50={r['p50_ms']:7.1f} ms "
                      f"p95={r['p95_ms']:7.1f} ms  aggregate RTF={r['agg_rtf']:.3f} "
                      f"({r['audio_s']:.1f} s audio in {r['wall_s']:.1f} s, {r['sentences']} sentences) "
                      f"mean vocoder batch={stats.mean_vocoder_batch():.2f} "
                      f"mean decode batch={stats.mean_decode_batch():.2f}", flush=True)
    print("\nratios (one-at-a-time / batched; >1 means batching is better):")
    for n in counts:
        b, s = table[("batched", n)], table[("one-at-a-time", n)]
        print(f"  sessions={n:<3} p50 latency x{s['p50_ms'] / b['p50_ms']:.2f}  "
              f"p95 latency x{s['p95_ms'] / b['p95_ms']:.2f}  throughput x{s['agg_rtf'] / b['agg_rtf']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
