"""Admission benchmark: N sessions at once against a real server with admission control on.

    python bench/bench_admission.py                  # 24 sessions at once, 2 rounds, the default voice
    python bench/bench_admission.py --baseline       # the same with admission off too (every session served)
    python bench/bench_admission.py --smoke          # CI: 6 sessions, 1 round

First a lone session (its first audio is the yardstick), then each round: N native WebSocket
sessions connect at once, each streams its text word by word (like bench_stream.py) and reads all
of its audio. A session is either accepted (it speaks in full) or refused; a refusal must be clear:
an `error` message with code `overloaded` and a `retry_after`, then close 1013.

Goal (issue #11): accepted sessions' first audio p95 <= max(1.5 s, 4 x the lone session's), no
stall over 1 s, the rest refused clearly, and afterwards 0 sessions open and nothing queued.
First audio: from sending the frame that completes a session's first sentence to its first audio
byte. Stalls: bench_stream.py's playback model (each sentence played in real time from its first
chunk; a chunk that arrives after the audio before it ran out is a stall, as long as the wait).

Round 1 starts on the capacity estimate `admission.initial_streams` (the lone session has not
measured enough audio); later rounds run on the capacity measured from the audio before them.
Each round prints the capacity it started with and the engine RTF it ran at (compute seconds per
audio second: 1 / RTF real-time streams; a machine shared with other work shows a higher RTF).
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

from stream_server.config import AppConfig  # noqa: E402
from stream_server.text.segmenter import SentenceSegmenter  # noqa: E402

from background import BackgroundServer  # noqa: E402  (tests/)
from bench_stream import LINES  # noqa: E402  (bench/, beside this script)


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
        / max(1e-9, after["audio_seconds"] - before["audio_seconds"]), "accepted": len(accepted), "refused": len(refused), "wall": wall,
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


def report(name: str, r: dict, goal: float) -> bool:
    first_p95 = pct(r["first"], 0.95)
    worst_stall = max(r["stalls"], default=0.0)
    met = first_p95 <= goal and worst_stall <= 1.0 and r["clear"] and r["complete"] and not any(r["left"].values())
    print(f"{name}: capacity {r['capacity']} | engine RTF {r['rtf']:.3f} | accepted {r['accepted']} refused {r['refused']} "
          f"(all clear: {r['clear']}, retry_after {r['retry_after']}) | accepted first audio "
          f"p50 {pct(r['first'], 0.5) * 1000:.0f} ms p95 {first_p95 * 1000:.0f} ms (goal <= {goal * 1000:.0f} ms) "
          f"| stalls {len(r['stalls'])}: max {worst_stall:.2f} s p95 {pct(r['stalls'], 0.95):.2f} s, "
          f"per-session total p95 {pct(r['session_stall'], 0.95):.2f} s | {r['audio']:.1f} s audio in "
          f"{r['wall']:.1f} s | afterwards {r['left']['open']} sessions open (active), {r['left']['queued']} sentences queued "
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


async def run(srv: BackgroundServer, args, name: str) -> bool:
    first = await lone(srv, args.sentences, args.words_per_second)
    goal = max(1.5, 4 * first)
    print(f"{name}: lone session first audio {first * 1000:.0f} ms -> goal: accepted first audio p95 <= "
          f"max(1.5 s, 4 x lone) = {goal * 1000:.0f} ms, no stall over 1 s", flush=True)
    ok = True
    for k in range(args.rounds):
        r = await burst(srv, args.sessions, args.sentences, args.words_per_second, offset=k + 1)
        ok &= report(f"{name} round {k + 1}", r, goal)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=24, help="sessions connecting at once")
    ap.add_argument("--sentences", type=int, default=4, help="sentences per session")
    ap.add_argument("--words-per-second", type=float, default=15.0, help="text pace per session")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--voice", default=AppConfig().default_voice)
    ap.add_argument("--baseline", action="store_true", help="also run with admission off (every session served)")
    ap.add_argument("--smoke", action="store_true", help="CI: 6 sessions, 2 sentences, 1 round")
    args = ap.parse_args()
    logging.getLogger("stream_server.server.services").setLevel(logging.ERROR)  # a line per refusal
    if args.smoke:
        args.sessions, args.sentences, args.rounds, args.baseline = 6, 2, 1, False
    print(f"{os.cpu_count()} CPUs; voice {args.voice}; {args.sessions} sessions at once, {args.sentences} "
          f"sentences each, text at {args.words_per_second:g} words/s; sentence cache off", flush=True)
    ok = True
    modes = {"admission on": True, **({"admission off": False} if args.baseline else {})}
    for name, admission in modes.items():
        with BackgroundServer(make_config(args.voice, admission)) as srv:
            ok &= asyncio.run(run(srv, args, name))
    if not ok:
        print("FAILED: a refusal was not clear, an accepted session was cut short, or something was left")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
