"""Churn: many short native WebSocket sessions that leave in every way a client can, then a check
that the server let go of all of them.

    python bench/bench_churn.py              # 1,000 sessions, 16 at a time, in 10 rounds
    python bench/bench_churn.py --smoke      # 56 sessions in 4 rounds (CI)

Ways of leaving, taken in turn: close right after `ready`; close mid-sentence (after the first
audio); cancel, wait for `cancelled`, close; drop the TCP connection without a close frame (FIN);
reset it (RST); `end` and read to `done`; `end` and drop the connection at once. Half the sessions
speak sentences from a small set (cache hits once one was spoken whole), half unique ones
(synthesized, then cut short).

The server is a real `stream-server serve` process with its own redis-server (bench/observed_server.py;
the in-process LRU is off, so its bounded 32 MB of audio does not read as growth). After a
warm-up round at the same concurrency (first allocations, the Redis pool filling), a baseline is
taken; then the sessions run in --rounds rounds, and after each, once the server reports no
session, no engine slot held and nothing queued, the same numbers again, and at the end their
slopes per 1,000 sessions. It fails, printing them, if anything is still held, if file
descriptors or threads grew, if Redis connections exceed the server's pool bound, or (runs of 500
sessions and more) if RSS still rises over the second half faster than --max-rss-kb-per-session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import sys
import time
from collections import Counter

import websockets

from observed_server import ObservedServer, slope_per_minute

CACHED = [  # short, so a session that reads to the end is quick; spoken whole, they are cache hits
    "Good morning, how can I help?",
    "The shop opens at nine.",
    "Please hold the line.",
    "Your order is on its way.",
    "Thanks for calling, goodbye.",
    "The next train leaves soon.",
]

POOL_BOUND = 16  # cache.max_connections: the server's Redis pool never holds more
FD_SLACK = 2  # a listening-socket backlog or a log rotation may come and go
THREAD_SLACK = 2


def text_for(i: int, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice(CACHED)} {rng.choice(CACHED)}"
    return f"Visitor {i} asks about the weather in town {i % 97}. The answer comes in pieces."


async def recv_json(ws, wanted: str) -> dict:
    """Frames until a JSON message of type `wanted` (audio and other messages are skipped)."""
    while True:
        frame = await ws.recv()
        if isinstance(frame, str):
            msg = json.loads(frame)
            if msg["type"] == "error":
                raise RuntimeError(f"server error while waiting for {wanted}: {msg}")
            if msg["type"] == wanted:
                return msg


async def first_audio(ws) -> None:
    while not isinstance(await ws.recv(), bytes):
        pass


def drop(ws, reset: bool) -> None:
    """Close the TCP connection under the WebSocket, without a close frame (RST with `reset`)."""
    sock = ws.transport.get_extra_info("socket")
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


async def close_after_ready(ws, text):
    await ws.close()


async def close_mid_sentence(ws, text):
    await ws.send(json.dumps({"type": "text", "text": text}))
    await ws.send(json.dumps({"type": "flush"}))
    await first_audio(ws)
    await ws.close()


async def cancel_then_close(ws, text):
    await ws.send(json.dumps({"type": "text", "text": text}))
    await ws.send(json.dumps({"type": "flush"}))
    await recv_json(ws, "sentence_start")
    await ws.send(json.dumps({"type": "cancel"}))
    await recv_json(ws, "cancelled")
    await ws.close()


async def drop_mid_sentence(ws, text):
    await ws.send(json.dumps({"type": "text", "text": text}))
    await ws.send(json.dumps({"type": "flush"}))
    await first_audio(ws)
    drop(ws, reset=False)


async def reset_mid_sentence(ws, text):
    await ws.send(json.dumps({"type": "text", "text": text}))
    await ws.send(json.dumps({"type": "flush"}))
    await first_audio(ws)
    drop(ws, reset=True)


async def end_read_done(ws, text):
    await ws.send(json.dumps({"type": "text", "text": text}))
    await ws.send(json.dumps({"type": "end"}))
    await recv_json(ws, "done")
    await ws.wait_closed()
    if ws.close_code != 1000:
        raise RuntimeError(f"closed with {ws.close_code} after done")


async def end_then_drop(ws, text):
    await ws.send(json.dumps({"type": "text", "text": text}))
    await ws.send(json.dumps({"type": "end"}))
    drop(ws, reset=False)


KINDS = [close_after_ready, close_mid_sentence, cancel_then_close, drop_mid_sentence, reset_mid_sentence,
         end_read_done, end_then_drop]


async def one_session(url: str, i: int, rng: random.Random, timeout: float) -> str:
    kind = KINDS[i % len(KINDS)]
    text = text_for(i, rng)

    async def run():
        ws = await websockets.connect(url, max_size=None)
        try:
            ready = json.loads(await ws.recv())
            if ready["type"] != "ready":
                raise RuntimeError(f"expected ready, got {ready}")
            await kind(ws, text)
        finally:
            if ws.transport is not None and not ws.transport.is_closing():
                ws.transport.abort()  # only after a failure: never leave a socket behind

    await asyncio.wait_for(run(), timeout)
    return kind.__name__


async def churn(url: str, count: int, concurrency: int, seed: int, timeout: float, start: int = 0):
    rng = random.Random(seed)
    gate = asyncio.Semaphore(concurrency)
    done: Counter = Counter()
    failures: list[str] = []

    async def guarded(i: int) -> None:
        async with gate:
            try:
                done[await one_session(url, i, rng, timeout)] += 1
            except Exception as exc:  # noqa: BLE001  (reported and counted: the run fails)
                failures.append(f"session {i} ({KINDS[i % len(KINDS)].__name__}): {exc!r}")

    await asyncio.gather(*(guarded(start + i) for i in range(count)))
    return done, failures


def slope_per_session(counts: list[int], samples: list) -> dict[str, float]:
    """Least-squares slope of each resource over sessions done (RSS in KB)."""
    fit = lambda ys: slope_per_minute(counts, ys) / 60  # noqa: E731  (the same fit, per session)
    return {
        "rss_kb": 1024 * fit([s.rss_mb for s in samples]),
        "fds": fit([s.fds for s in samples]),
        "threads": fit([s.threads for s in samples]),
        "redis_clients": fit([s.redis_clients for s in samples]),
    }


def slope_line(label: str, counts: list[int], samples: list) -> dict[str, float]:
    sl = slope_per_session(counts, samples)
    print(f"churn: slope per 1,000 sessions, {label} ({len(samples)} samples): "
          f"rss {sl['rss_kb'] * 1000 / 1024:+.1f} MB, "
          f"fds {sl['fds'] * 1000:+.1f}, threads {sl['threads'] * 1000:+.1f}, "
          f"redis clients {sl['redis_clients'] * 1000:+.1f}", flush=True)
    return sl


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=10, help="a sample after each (the server idle)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--session-timeout", type=float, default=60.0, help="seconds one session may take")
    # Loose on purpose: glibc keeps freed native memory (torch tensors of every sentence length,
    # oneDNN's primitive cache), so RSS rises ~50-200 KB/session here while nothing is live
    # (malloc_trim(0) in the server gave it all back). Only a gross leak trips this.
    ap.add_argument("--max-rss-kb-per-session", type=float, default=512.0,
                    help="RSS slope over the second half of the rounds that fails a run of 500 sessions or more")
    ap.add_argument("--smoke", action="store_true", help="CI: 56 sessions (8 of each kind) in 4 rounds")
    args = ap.parse_args()
    if args.smoke:
        args.sessions, args.rounds = 8 * len(KINDS), 4
    per_round = -(-args.sessions // args.rounds)
    warmup = 2 * args.concurrency

    env = {"STREAM_SERVER_CACHE__LOCAL_MAX_MB": "0"}
    done: Counter = Counter()
    failures: list[str] = []
    counts: list[int] = []
    samples = []
    with ObservedServer(env) as srv:
        fresh = srv.sample()
        print(f"churn: {args.sessions} sessions in {args.rounds} rounds, {args.concurrency} at a time; "
              f"server pid {srv.server.pid}, log {srv.server.log_path}", flush=True)
        print(f"{'started':>14}: {fresh.line()}", flush=True)
        _, failures = asyncio.run(churn(srv.url, warmup, args.concurrency, args.seed, args.session_timeout, 10**6))
        if failures:
            print("\n".join(failures[:20]), file=sys.stderr)
            return 1
        base = srv.wait_idle()
        counts.append(0)
        samples.append(base)
        print(f"{'baseline':>14}: {base.line()}  (after {warmup} warm-up sessions)", flush=True)
        t0 = time.monotonic()
        n = 0
        while n < args.sessions and len(failures) < 20:
            size = min(per_round, args.sessions - n)
            got, failed = asyncio.run(churn(srv.url, size, args.concurrency, args.seed + n, args.session_timeout, n))
            done.update(got)
            failures += failed
            n += size
            end = srv.wait_idle()  # each round: every session gone, every slot free, nothing queued
            counts.append(n)
            samples.append(end)
            print(f"{f'after {n}':>14}: {end.line()}", flush=True)
            if (end.sessions, end.slots, end.queued) != (0, 0, 0):
                break
        elapsed = time.monotonic() - t0
        log_tail = srv.log_tail()

    count = sum(done.values())
    print(f"churn: {count} sessions in {elapsed:.1f} s ({count / elapsed:.1f}/s): "
          + ", ".join(f"{k} {n}" for k, n in done.items()))
    slope_line("all rounds", counts, samples)
    late = slope_line("second half", counts[len(counts) // 2:], samples[len(samples) // 2:])
    problems = list(failures[:20])
    if (end.sessions, end.slots, end.queued) != (0, 0, 0):
        problems.append(f"still held after 60 s: sessions={end.sessions:g} slots={end.slots:g} queued={end.queued:g}")
    # the server's Redis pool sockets are its fds too: growth there is judged against the pool bound
    fd_growth = (end.fds - end.redis_clients) - (base.fds - base.redis_clients)
    if fd_growth > FD_SLACK:
        problems.append(f"file descriptors grew by {fd_growth} (not counting Redis connections): "
                        f"{base.fds} -> {end.fds}")
    if end.redis_clients > max(base.redis_clients, POOL_BOUND):
        problems.append(f"Redis connections {base.redis_clients} -> {end.redis_clients} (pool bound {POOL_BOUND})")
    if end.threads > base.threads + THREAD_SLACK:
        problems.append(f"threads {base.threads} -> {end.threads}")
    # RSS: judged by its slope over the later rounds (the first ones include first allocations)
    if args.sessions >= 500 and late["rss_kb"] > args.max_rss_kb_per_session:
        problems.append(f"RSS still rising over the second half: {late['rss_kb']:.1f} KB/session "
                        f"(limit {args.max_rss_kb_per_session:g})")
    rss_growth = end.rss_mb - base.rss_mb
    print(f"churn: from baseline to the end: rss {rss_growth:+.1f} MB "
          f"({1024 * rss_growth / max(count, 1):+.1f} KB/session), "
          f"fds {end.fds - base.fds:+d}, threads {end.threads - base.threads:+d}, "
          f"redis clients {end.redis_clients - base.redis_clients:+d}")
    if problems:
        print("churn: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
        print(f"end of the server's log:\n{log_tail}", file=sys.stderr)
        return 1
    print("churn: ok (nothing held, nothing leaked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
