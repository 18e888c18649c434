"""Admission benchmark: N sessions at once against a real server with admission control on.

    python bench/bench_admission.py                  # 24 sessions at once on a fresh server, 2 rounds
    python bench/bench_admission.py --sweep          # issue #18 item 4: what the box sustains with
                                                     # admission off, then a fresh server with it on
    python bench/bench_admission.py --baseline       # the rounds with admission off too
    python bench/bench_admission.py --smoke          # CI: 6 sessions, 1 round, a short sweep

Each round: N native WebSocket sessions connect at once, each streams its text word by word (like
bench_stream.py) and reads all of its audio. A session is either accepted (it speaks in full) or
refused; a refusal must be clear: an `error` message with code `overloaded` and a `retry_after`,
then close 1013. The first round of a server runs right after its start: its capacity is what
the start-up calibration (server/calibration.py) made of the machine, with no audio measured yet.

Goal (issue #18 item 3): accepted sessions' first audio p95 <= max(1.5 s, 4 x a lone session's),
stalls p95 <= 1 s, the rest refused clearly, and afterwards 0 sessions open and nothing queued.
First audio: from sending the frame that completes a session's first sentence to its first audio
byte. Stalls: bench_stream.py's playback model (each sentence played in real time from its first
chunk; a chunk that arrives after the audio before it ran out is a stall, as long as the wait).
The lone session runs on a server with admission off (so the measured server stays fresh).

--sweep (item 4): with admission off, bursts of 2, 4, 6, ... sessions find the most the box
sustains within the goal; then a fresh server with admission on takes the N-session burst, and
accepts at least 0.8 x that many, whose figures meet the goal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test harness that runs a real server in-process

from background import BackgroundServer  # noqa: E402  (tests/)
from bench_stream import LINES  # noqa: E402  (bench/, beside this script)
from stream_server.config import AppConfig  # noqa: E402
from stream_server.text.segmenter import SentenceSegmenter  # noqa: E402


@dataclass
class Outcome:
    accepted: bool = False
    refusal: dict | None = None  # the error message of a refused session
    close_code: int | None = None
    first_audio: float | None = None  # seconds, the first sentence's
    audio_seconds: float = 0.0
    stalls: list[float] = field(default_factory=list)  # each stall's length, seconds
    complete: bool = False  # every sentence spoken and the flush answered


def stalls_of(chunks: list[tuple[float, float]]) -> list[float]:
    """bench_stream's count_stalls, keeping each stall's length: a sentence plays in real time
    from its first chunk; a later chunk after the audio before it ran out is a stall."""
    out, playhead = [], None
    for arrived, seconds in chunks:
        if playhead is not None and arrived > playhead + 1e-3:
            out.append(arrived - playhead)
            playhead = arrived
        playhead = (arrived if playhead is None else playhead) + seconds
    return out


async def session(url: str, text: str, rate: int, wps: float) -> Outcome:
    out = Outcome()
    async with websockets.connect(f"{url}/v1/tts/stream", max_size=None) as ws:
        hello = json.loads(await ws.recv())
        if hello["type"] != "ready":
            out.refusal = hello
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            out.close_code = ws.close_code
            return out
        out.accepted = True
        await _speak(ws, out, text, rate, wps)
    return out


async def _speak(ws, out: Outcome, text: str, rate: int, wps: float) -> None:
    segmenter, completed = SentenceSegmenter(), []  # when each sentence's completing frame went

    async def send_text() -> None:
        for word in text.split(" "):
            await ws.send(json.dumps({"type": "text", "text": word + " "}))
            completed.extend([time.perf_counter()] * len(segmenter.push(word + " ")))
            await asyncio.sleep(1.0 / wps)
        await ws.send(json.dumps({"type": "flush"}))
        completed.extend([time.perf_counter()] * len(segmenter.flush()))

    sender = asyncio.create_task(send_text())
    chunks: list[tuple[float, float]] = []
    while True:
        frame = await ws.recv()
        if isinstance(frame, bytes):
            now = time.perf_counter()
            if out.first_audio is None:
                out.first_audio = now  # made relative below, once the completing frame is known
            chunks.append((now, len(frame) / 2 / rate))
            out.audio_seconds += len(frame) / 2 / rate
            continue
        kind = json.loads(frame)["type"]
        if kind == "sentence_start":
            chunks = []
        elif kind == "sentence_end":
            out.stalls += stalls_of(chunks)
        elif kind == "flushed":
            break
    await sender
    out.first_audio -= completed[0]
    out.complete = True


def pct(values: list[float], q: float) -> float:
    """The q-quantile, seconds (0 for none)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def texts(n: int, sentences: int, offset: int) -> list[str]:
    return [" ".join(LINES[(offset + i + k) % len(LINES)] for k in range(max(1, sentences // 2)))
            for i in range(n)]


async def settle(srv: BackgroundServer, timeout: float = 60.0) -> dict:
    """Once the sessions are gone and the engine idle (or the timeout): what is left."""
    services = srv.services
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (services.sessions or services.client.in_flight()):
        await asyncio.sleep(0.05)
    sessions = list(services.sessions.values())
    return {
        "open": len(sessions),
        "queued": services.engine.stats.waiting + services.client.in_flight()
        + sum(s.queued_sentences() for s in sessions),
    }


async def lone(srv: BackgroundServer, sentences: int, wps: float) -> float:
    [out] = await asyncio.gather(session(srv.url, texts(1, sentences, 0)[0], srv.config.session.sample_rate, wps))
    assert out.accepted and out.complete, out
    return out.first_audio


async def burst(srv: BackgroundServer, n: int, sentences: int, wps: float, offset: int) -> dict:
    rate = srv.config.session.sample_rate
    admission, stats = srv.services.admission, srv.services.engine.stats
    capacity = admission.capacity() if srv.config.admission.enabled else None
    before = stats.snapshot()
    t0 = time.perf_counter()
    outcomes = await asyncio.gather(*(session(srv.url, t, rate, wps) for t in texts(n, sentences, offset)))
    wall = time.perf_counter() - t0
    after = stats.snapshot()
    accepted = [o for o in outcomes if o.accepted]
    refused = [o for o in outcomes if not o.accepted]
    stalls = [s for o in accepted for s in o.stalls]
    return {
        "capacity": capacity, "rtf": (after["step_seconds"] - before["step_seconds"])
        / max(1e-9, after["audio_seconds"] - before["audio_seconds"]),
        "accepted": len(accepted), "refused": len(refused), "wall": wall,
        "clear": all(_clear(o) for o in refused), "complete": all(o.complete for o in accepted),
        "first": [o.first_audio for o in accepted], "stalls": stalls,
        "session_stall": [sum(o.stalls) for o in accepted],
        "audio": sum(o.audio_seconds for o in accepted),
        "retry_after": sorted({o.refusal.get("retry_after") for o in refused}),
        "left": await settle(srv),
    }


def _clear(o: Outcome) -> bool:
    r = o.refusal or {}
    return r.get("code") == "overloaded" and bool(r.get("retry_after")) and o.close_code == 1013


def meets_goal(r: dict, goal: float) -> bool:
    return (pct(r["first"], 0.95) <= goal and pct(r["stalls"], 0.95) <= 1.0 and r["clear"] and r["complete"]
            and not any(r["left"].values()))


def report(name: str, r: dict, goal: float) -> bool:
    first_p95 = pct(r["first"], 0.95)
    met = meets_goal(r, goal)
    print(f"{name}: capacity {r['capacity']} | engine RTF {r['rtf']:.3f} | accepted {r['accepted']} "
          f"refused {r['refused']} "
          f"(all clear: {r['clear']}, retry_after {r['retry_after']}) | accepted first audio "
          f"p50 {pct(r['first'], 0.5) * 1000:.0f} ms p95 {first_p95 * 1000:.0f} ms (goal <= {goal * 1000:.0f} ms) "
          f"| stalls {len(r['stalls'])}: p95 {pct(r['stalls'], 0.95):.2f} s max {max(r['stalls'], default=0.0):.2f} s, "
          f"per-session total p95 {pct(r['session_stall'], 0.95):.2f} s | {r['audio']:.1f} s audio in "
          f"{r['wall']:.1f} s | afterwards {r['left']['open']} sessions open (active), "
          f"{r['left']['queued']} sentences queued "
          f"| goal met: {'yes' if met else 'no'}", flush=True)
    return r["clear"] and r["complete"] and not any(r["left"].values())


def make_config(voice: str, admission: bool) -> AppConfig:
    cfg = AppConfig()
    cfg.default_voice = voice
    cfg.server.port = 0
    cfg.wyoming.enabled = False
    cfg.cache.enabled = False  # every sentence synthesized
    cfg.admission.enabled = admission
    return cfg


def lone_goal(args) -> float:
    """A lone session's first audio (admission off, so no server that is measured later saw it)
    -> the goal for first audio p95."""
    with BackgroundServer(make_config(args.voice, False)) as srv:
        asyncio.run(lone(srv, args.sentences, args.words_per_second))  # warm: the first session pays for lazy set-up
        first = asyncio.run(lone(srv, args.sentences, args.words_per_second))
    goal = max(1.5, 4 * first)
    print(f"lone session first audio {first * 1000:.0f} ms -> goal: accepted first audio p95 <= "
          f"max(1.5 s, 4 x lone) = {goal * 1000:.0f} ms, stalls p95 <= 1 s", flush=True)
    return goal


def rounds(args, name: str, admission: bool, goal: float) -> tuple[bool, dict]:
    """A fresh server; its first round comes right after its start. -> (all clear, round 1)"""
    ok, results = True, []
    with BackgroundServer(make_config(args.voice, admission)) as srv:
        if (model := srv.services.admission.cost_model) is not None:
            curve = ", ".join(f"{rtf:.3f} at {n}" for n, rtf in model.points)
            print(f"{name}: calibrated engine RTF {curve} -> capacity {srv.services.admission.capacity()} "
                  f"(headroom {srv.config.admission.headroom:g})", flush=True)
        for k in range(args.rounds):
            results.append(asyncio.run(burst(srv, args.sessions, args.sentences, args.words_per_second, offset=k + 1)))
            ok &= report(f"{name} round {k + 1}", results[-1], goal)
    return ok, results[0]


def sweep(args, goal: float) -> int:
    """With admission off: the most sessions at once whose figures meet the goal (two failures in
    a row end the sweep)."""
    best, misses = 0, 0
    with BackgroundServer(make_config(args.voice, False)) as srv:
        for n in args.sweep_sizes:
            r = asyncio.run(burst(srv, n, args.sentences, args.words_per_second, offset=n))
            report(f"sweep, admission off, {n} sessions", r, goal)
            if meets_goal(r, goal):
                best, misses = n, 0
            else:
                misses += 1
                if misses == 2:
                    break
    print(f"sweep: the box sustains {best} sessions at once within the goal", flush=True)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=24, help="sessions connecting at once")
    ap.add_argument("--sentences", type=int, default=4, help="sentences per session")
    ap.add_argument("--words-per-second", type=float, default=15.0, help="text pace per session")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--voice", default=AppConfig().default_voice)
    ap.add_argument("--baseline", action="store_true", help="also run with admission off (every session served)")
    ap.add_argument("--sweep", action="store_true", help="item 4: the sustained sessions, then a fresh server")
    ap.add_argument("--sweep-sizes", default="2,4,6,8,10,12,14,16,20,24")
    ap.add_argument("--smoke", action="store_true", help="CI: 6 sessions, 2 sentences, 1 round, sweep 2 and 4")
    args = ap.parse_args()
    logging.getLogger("stream_server.server.services").setLevel(logging.ERROR)  # a line per refusal
    if args.smoke:
        args.sessions, args.sentences, args.rounds, args.baseline = 6, 2, 1, False
        args.sweep, args.sweep_sizes = True, "2,4"
    args.sweep_sizes = [int(n) for n in args.sweep_sizes.split(",")]
    print(f"{os.cpu_count()} CPUs; voice {args.voice}; {args.sessions} sessions at once, {args.sentences} "
          f"sentences each, text at {args.words_per_second:g} words/s; sentence cache off", flush=True)
    goal = lone_goal(args)
    sustained = sweep(args, goal) if args.sweep else None
    ok, fresh = rounds(args, "admission on (fresh server)", True, goal)
    if args.baseline:
        ok &= rounds(args, "admission off", False, goal)[0]
    if sustained is not None:
        enough = fresh["accepted"] >= 0.8 * sustained
        print(f"item 4: the fresh server accepted {fresh['accepted']} of {args.sessions} at once; the box sustains "
              f"{sustained} (x{fresh['accepted'] / max(1, sustained):.2f}, "
              f"bar x0.8: {'met' if enough else 'NOT met'}); "
              f"the accepted ones {'meet' if meets_goal(fresh, goal) else 'do NOT meet'} the goal", flush=True)
    if not ok:
        print("FAILED: a refusal was not clear, an accepted session was cut short, or something was left")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
