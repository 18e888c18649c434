"""Soak: a steady mixed load on one real server for a while, its resources printed every interval,
and at the end the slope of each (per minute): flat means flat, and the slope says how flat.

    python bench/bench_soak.py                  # 10 minutes, a sample every minute, 6 clients
    python bench/bench_soak.py --minutes 30     # longer
    python bench/bench_soak.py --smoke          # 30 s, a sample every 5 s (CI)

Each client loops over activities, each a new native WebSocket session: a talker (two unique
sentences sent in pieces, `end`, read to `done`), a cache hit (a sentence from a small set), a
barge-in (cancel after the first audio, then one more sentence), a slow reader (three sentences and
`end`, then nothing read for 3 s, then a frame every 20 ms) and a dropped connection (no close
frame, mid-sentence).

The server is a real `stream-server serve` process with its own redis-server (bench/observed_server.py;
in-process LRU off, as in bench_churn.py). After a warm-up (10% of the run, 5 to 30 s, not sampled)
and a baseline taken idle, each line gives: its RSS, open file descriptors, threads, open
sessions, engine slots held, queued sentences, Redis client connections. Slopes are least-squares
fits over the samples taken under load, and over the second half of them (after warm-up). At the
end, once the load stops, it fails if anything is still held or fds / threads / Redis connections
did not come back to the baseline, or (runs of 5 minutes and more) if RSS still rises faster than
--max-rss-slope-mb over the second half.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from collections import Counter

import websockets

from bench_churn import CACHED, FD_SLACK, POOL_BOUND, THREAD_SLACK, drop, first_audio, recv_json
from observed_server import ObservedServer, Sample, slope_per_minute


async def send_in_pieces(ws, text: str, rng: random.Random) -> None:
    """As an LLM would: a few characters at a time."""
    i = 0
    while i < len(text):
        n = rng.randint(3, 12)
        await ws.send(json.dumps({"type": "text", "text": text[i:i + n]}))
        i += n


async def talker(ws, n: int, rng: random.Random) -> None:
    await send_in_pieces(ws, f"Soak line {n} has started. It ends in town number {n % 89}.", rng)
    await ws.send(json.dumps({"type": "end"}))
    await recv_json(ws, "done")


async def cache_hit(ws, n: int, rng: random.Random) -> None:
    await ws.send(json.dumps({"type": "text", "text": rng.choice(CACHED)}))
    await ws.send(json.dumps({"type": "end"}))
    await recv_json(ws, "done")


async def barge_in(ws, n: int, rng: random.Random) -> None:
    await ws.send(json.dumps({"type": "text", "text": f"Interrupted line {n} goes on and on about the weather."}))
    await ws.send(json.dumps({"type": "flush"}))
    await first_audio(ws)
    await ws.send(json.dumps({"type": "cancel"}))
    await recv_json(ws, "cancelled")
    await ws.send(json.dumps({"type": "text", "text": rng.choice(CACHED)}))
    await ws.send(json.dumps({"type": "end"}))
    await recv_json(ws, "done")


async def slow_reader(ws, n: int, rng: random.Random) -> None:
    text = f"Slow reader {n} asks one thing. Then another. {rng.choice(CACHED)}"
    await ws.send(json.dumps({"type": "text", "text": text}))
    await ws.send(json.dumps({"type": "end"}))
    await asyncio.sleep(3.0)  # reads late: the server holds the audio meanwhile
    while True:
        frame = await ws.recv()
        if isinstance(frame, str) and json.loads(frame)["type"] == "done":
            return
        await asyncio.sleep(0.02)


async def dropper(ws, n: int, rng: random.Random) -> None:
    await ws.send(json.dumps({"type": "text", "text": f"Dropped line {n} is never heard to its end."}))
    await ws.send(json.dumps({"type": "flush"}))
    await first_audio(ws)
    drop(ws, reset=rng.random() < 0.5)


ACTIVITIES = [(talker, 3), (cache_hit, 3), (barge_in, 2), (slow_reader, 1), (dropper, 1)]


async def client(url: str, cid: int, until: float, done: Counter, failures: list[str], timeout: float) -> None:
    rng = random.Random(cid)
    n = 0
    while time.monotonic() < until:
        activity = rng.choices([a for a, _ in ACTIVITIES], [w for _, w in ACTIVITIES])[0]
        n += 1
        try:
            async def run():
                async with websockets.connect(url, max_size=None) as ws:
                    assert json.loads(await ws.recv())["type"] == "ready"
                    await activity(ws, cid * 100_000 + n, rng)  # noqa: B023  (run() is awaited within this iteration)
            await asyncio.wait_for(run(), timeout)
            done[activity.__name__] += 1
        except Exception as exc:  # noqa: BLE001  (counted; the run fails)
            failures.append(f"client {cid} {activity.__name__}: {exc!r}")
            if len(failures) > 20:
                return
        await asyncio.sleep(rng.uniform(0.0, 0.5))  # think time


async def soak(srv: ObservedServer, seconds: float, interval: float, clients: int, timeout: float):
    """The load for `seconds`, a sample every `interval` (none: math.inf)."""
    samples: list[Sample] = []
    done: Counter = Counter()
    failures: list[str] = []
    until = time.monotonic() + seconds
    workers = [asyncio.create_task(client(srv.url, c, until, done, failures, timeout)) for c in range(clients)]
    next_at = time.monotonic() + interval
    while time.monotonic() < until:
        await asyncio.sleep(max(0.0, min(next_at, until) - time.monotonic()))
        if time.monotonic() >= next_at - 0.01:
            s = await asyncio.to_thread(srv.sample)
            samples.append(s)
            print(f"{'load':>8}: {s.line()}  sessions done={sum(done.values())}", flush=True)
            next_at += interval
    await asyncio.gather(*workers)  # each finishes the session it is in
    return samples, done, failures


def print_slopes(label: str, samples: list[Sample]) -> dict[str, float]:
    ts = [s.t for s in samples]
    slopes = {name: slope_per_minute(ts, [getattr(s, name) for s in samples])
              for name in ("rss_mb", "fds", "threads", "sessions", "slots", "queued", "redis_clients")}
    print(f"slope per minute, {label} ({len(samples)} samples): "
          f"rss {slopes['rss_mb']:+.2f} MB/min, fds {slopes['fds']:+.2f}/min, threads {slopes['threads']:+.2f}/min, "
          f"sessions {slopes['sessions']:+.2f}/min, slots {slopes['slots']:+.2f}/min, "
          f"queued {slopes['queued']:+.2f}/min, redis clients {slopes['redis_clients']:+.2f}/min", flush=True)
    return slopes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--session-timeout", type=float, default=120.0)
    # Not zero: glibc keeps freed native memory (torch tensors of every sentence length, oneDNN's
    # primitive cache) and espeak-ng keeps ~2 KB per phonemized text. A 10-minute run on 2 cores
    # measured +6.8 MB/min overall and +3.1 MB/min over its second half, slowing down.
    ap.add_argument("--max-rss-slope-mb", type=float, default=5.0,
                    help="MB/min over the second half that fails a run of 5 minutes or more")
    ap.add_argument("--smoke", action="store_true", help="CI: 30 s, a sample every 5 s, 4 clients")
    args = ap.parse_args()
    if args.smoke:
        args.minutes, args.interval, args.clients = 0.5, 5.0, 4
    warmup = min(30.0, max(5.0, 6 * args.minutes))  # 10% of the run, 5 to 30 s

    with ObservedServer({"STREAM_SERVER_CACHE__LOCAL_MAX_MB": "0"}) as srv:
        print(f"soak: {args.minutes:g} min, {args.clients} clients, a sample every {args.interval:g} s; "
              f"server pid {srv.server.pid}, log {srv.server.log_path}", flush=True)
        print(f"{'started':>8}: {srv.sample().line()}", flush=True)
        # warm-up (first allocations, the Redis pool and the default executor filling), then the baseline
        _, _, failures = asyncio.run(soak(srv, warmup, math.inf, args.clients, args.session_timeout))
        if failures:
            print("soak: warm-up failed\n  " + "\n  ".join(failures[:20]), file=sys.stderr)
            return 1
        start = srv.wait_idle()
        print(f"{'baseline':>8}: {start.line()}  (after {warmup:g} s of warm-up)", flush=True)
        samples, done, failures = asyncio.run(
            soak(srv, args.minutes * 60, args.interval, args.clients, args.session_timeout))
        end = srv.wait_idle()
        print(f"{'after':>8}: {end.line()}", flush=True)
        log_tail = srv.log_tail()

    print(f"soak: {sum(done.values())} sessions: " + ", ".join(f"{k} {n}" for k, n in sorted(done.items())))
    print_slopes("under load", samples)
    late = print_slopes("second half", samples[len(samples) // 2:])
    problems = list(failures[:20])
    if (end.sessions, end.slots, end.queued) != (0, 0, 0):
        problems.append(f"still held after the load: sessions={end.sessions:g} slots={end.slots:g} "
                        f"queued={end.queued:g}")
    fd_growth = (end.fds - end.redis_clients) - (start.fds - start.redis_clients)
    if fd_growth > FD_SLACK:
        problems.append(f"file descriptors grew by {fd_growth} (not counting Redis connections): "
                        f"{start.fds} -> {end.fds}")
    if end.redis_clients > max(start.redis_clients, POOL_BOUND):
        problems.append(f"Redis connections {start.redis_clients} -> {end.redis_clients} (pool bound {POOL_BOUND})")
    if end.threads > start.threads + THREAD_SLACK:
        problems.append(f"threads {start.threads} -> {end.threads}")
    if args.minutes >= 5 and late["rss_mb"] > args.max_rss_slope_mb:
        problems.append(f"RSS still rising over the second half: {late['rss_mb']:+.2f} MB/min "
                        f"(limit {args.max_rss_slope_mb:g})")
    if problems:
        print("soak: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
        print(f"end of the server's log:\n{log_tail}", file=sys.stderr)
        return 1
    print("soak: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
