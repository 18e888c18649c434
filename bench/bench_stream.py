"""Streaming benchmark: first-audio latency and real-time factor over the native WebSocket.

For each session count it runs the same workload twice in one process, against two real servers:
continuous batching (many sentences in flight, batched steps) and one-sentence-at-a-time serving
(max_slots=1), and prints the figures and their ratios.

    python bench/bench_stream.py                 # 1, 4, 16, 64 sessions, the default (AR) voice joe_ar
    python bench/bench_stream.py --voice joe     # the Piper VITS teacher instead
    python bench/bench_stream.py --smoke         # tiny run for CI

It first prints the AR model's batched decode-step time at batch 1, 8 and 32.

First-audio latency: from sending the frame that completes a sentence (the frame after which the
server's segmenter can emit it) to receiving that sentence's first audio byte.
Engine RTF: seconds the engine thread was busy / seconds of audio it produced (below 1 is faster
than real time; its inverse is how many real-time streams the machine sustains). Wall RTF: run
time / audio, which includes the pacing of the text. Session RTF: per session, from its first text
frame to its last audio byte / its audio seconds (p50 and worst over sessions).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test harness that runs a real server in-process

from ar_decode_timing import time_decode_steps  # noqa: E402  (bench/, beside this script)
from background import BackgroundServer  # noqa: E402  (tests/)
from stream_server.config import AppConfig  # noqa: E402
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
    latencies: list[float] = field(default_factory=list)  # per sentence, in order
    audio_seconds: float = 0.0
    stalls: int = 0  # gaps inside a sentence a client playing at once would hear
    stall_seconds: float = 0.0
    span: float = 0.0  # first text frame sent -> last audio byte received


def count_stalls(result: SessionResult, chunks: list[tuple[float, float]]) -> None:
    """A client plays a sentence from its first chunk on; a later chunk arriving after the
    audio before it has run out is a stall (an underrun between chunks of one sentence)."""
    playhead = None
    for arrived, seconds in chunks:
        if playhead is not None and arrived > playhead + 1e-3:
            result.stalls += 1
            result.stall_seconds += arrived - playhead
            playhead = arrived
        playhead = (arrived if playhead is None else playhead) + seconds


async def run_session(url: str, text: str, sample_rate: int, delay: float, wps: float) -> SessionResult:
    """One client: starts after `delay`, streams `text` word by word at `wps` words/s (0: burst)."""
    await asyncio.sleep(delay)
    result = SessionResult()
    segmenter = SentenceSegmenter()
    completed_at: list[float] = []  # per sentence: when its completing frame was sent
    first_audio: dict[int, float] = {}
    async with websockets.connect(f"{url}/v1/tts/stream", max_size=None) as ws:
        json.loads(await ws.recv())
        started, last_audio = time.perf_counter(), 0.0

        async def send_text():
            for word in text.split(" "):
                await ws.send(json.dumps({"type": "text", "text": word + " "}))
                now = time.perf_counter()
                completed_at.extend([now] * len(segmenter.push(word + " ")))
                if wps:
                    await asyncio.sleep(1.0 / wps)
            await ws.send(json.dumps({"type": "flush"}))
            completed_at.extend([time.perf_counter()] * len(segmenter.flush()))

        sender = asyncio.create_task(send_text())
        current, samples, chunks = None, 0, []
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                now = last_audio = time.perf_counter()
                first_audio.setdefault(current, now)
                samples += len(frame) // 2
                chunks.append((now, len(frame) / 2 / sample_rate))
                continue
            msg = json.loads(frame)
            if msg["type"] == "sentence_start":
                current, chunks = msg["index"], []
            elif msg["type"] == "sentence_end":
                count_stalls(result, chunks)
            elif msg["type"] == "flushed":
                break
        await sender
    result.latencies = [first_audio[i] - completed_at[i] for i in sorted(first_audio)]
    result.audio_seconds = samples / sample_rate
    result.span = last_audio - started
    return result


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return 1000 * values[min(len(values) - 1, int(q * len(values)))]


async def run_workload(srv, sessions: int, sentences: int, wps: float, stagger: float) -> dict:
    rate = srv.config.session.sample_rate
    texts = [" ".join(LINES[(i + k) % len(LINES)] for k in range(max(1, sentences // 2)))
             for i in range(sessions)]
    before = srv.services.engine.stats.snapshot()
    t0 = time.perf_counter()
    results = await asyncio.gather(*(
        run_session(srv.url, t, rate, stagger * i / sessions, wps) for i, t in enumerate(texts)
    ))
    wall = time.perf_counter() - t0
    after = srv.services.engine.stats.snapshot()
    d = {k: after[k] - before[k] for k in after}
    all_lat = [x for r in results for x in r.latencies]
    first = [r.latencies[0] for r in results]
    session_rtf = sorted(r.span / r.audio_seconds for r in results)
    return {
        "first_p50": pct(first, 0.5), "first_p95": pct(first, 0.95),
        "all_p50": pct(all_lat, 0.5), "all_p95": pct(all_lat, 0.95),
        "compute_rtf": d["step_seconds"] / d["audio_seconds"],
        "wall_rtf": wall / sum(r.audio_seconds for r in results),
        "session_rtf_p50": session_rtf[len(session_rtf) // 2], "session_rtf_max": session_rtf[-1],
        "audio_s": sum(r.audio_seconds for r in results), "wall_s": wall,
        "sentences": len(all_lat),
        "stalls": sum(r.stalls for r in results),
        "stall_s": sum(r.stall_seconds for r in results),
        "vocoder_batch": d["vocoder_rows"] / max(1, d["vocoder_calls"]),
        "decode_batch": d["decode_rows"] / max(1, d["decode_steps"]),
    }


def make_config(voice: str, slots: int, threads: int) -> AppConfig:
    cfg = AppConfig()
    cfg.default_voice = voice
    cfg.server.port = 0
    cfg.wyoming.enabled = False  # the benchmark speaks the native protocol only
    cfg.engine.max_slots = slots
    cfg.engine.torch_threads = threads
    cfg.cache.enabled = False  # measure synthesis; bench_cache.py measures the cache
    cfg.admission.enabled = False  # every session served, past capacity too (bench_admission.py)
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default="1,4,16,64")
    ap.add_argument("--sentences", type=int, default=4, help="sentences per session")
    ap.add_argument("--words-per-second", type=float, default=15.0,
                    help="text arrival pace per session, like an LLM stream (0: all at once)")
    ap.add_argument("--stagger", type=float, default=1.0, help="session starts spread over this many s")
    ap.add_argument("--voice", default=AppConfig().default_voice, help="a voice of the default config")
    ap.add_argument("--slots", type=int, default=64, help="max_slots of the batching server")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="tiny CI run: 1 and 2 sessions")
    args = ap.parse_args()
    counts = [1, 2] if args.smoke else [int(x) for x in args.sessions.split(",")]
    sentences = 2 if args.smoke else args.sentences
    modes = {"batched": args.slots, "one-at-a-time": 1}
    if AppConfig().voices[args.voice].kind == "ar":
        print("AR decode step (time_decode_steps, this model's shapes):")
        time_decode_steps((1, 8, 32), n_steps=16 if args.smoke else 64)
    print(f"voice {args.voice}; {sentences} sentences per session, text at "
          f"{args.words_per_second} words/s, starts spread over {args.stagger} s")
    table: dict[tuple[str, int], dict] = {}
    with contextlib.ExitStack() as stack:
        # Both servers up at once and the modes alternated per session count, so that drift in
        # a shared machine's speed hits both alike.
        servers = {
            mode: stack.enter_context(BackgroundServer(make_config(args.voice, slots, args.threads)))
            for mode, slots in modes.items()
        }
        for n in counts:
            for mode, srv in servers.items():
                r = table[(mode, n)] = asyncio.run(
                    run_workload(srv, n, sentences, args.words_per_second, args.stagger)
                )
                print(f"{mode:>14} sessions={n:<3} first sentence: first-audio p50={r['first_p50']:7.1f} ms "
                      f"p95={r['first_p95']:7.1f} ms | all sentences p50={r['all_p50']:7.1f} ms "
                      f"p95={r['all_p95']:7.1f} ms | engine RTF={r['compute_rtf']:.3f} "
                      f"wall RTF={r['wall_rtf']:.3f} session RTF p50={r['session_rtf_p50']:.3f} "
                      f"max={r['session_rtf_max']:.3f} ({r['audio_s']:.1f} s audio, {r['sentences']} sentences) "
                      f"| stalls {r['stalls']} ({r['stall_s']:.2f} s) "
                      f"| mean batch: vocoder {r['vocoder_batch']:.2f} decode {r['decode_batch']:.2f}",
                      flush=True)
    print("\nratios one-at-a-time / batched (>1: continuous batching is better):")
    for n in counts:
        b, s = table[("batched", n)], table[("one-at-a-time", n)]
        print(f"  sessions={n:<3} first-sentence p50 x{s['first_p50'] / b['first_p50']:.2f} "
              f"p95 x{s['first_p95'] / b['first_p95']:.2f} | all-sentence p50 x{s['all_p50'] / b['all_p50']:.2f} "
              f"p95 x{s['all_p95'] / b['all_p95']:.2f} | engine RTF x{s['compute_rtf'] / b['compute_rtf']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
