"""Audio held on the server for a client that stops reading, over time, with the backpressure
settings and without them, in one run (issue #11: backpressure).

    python bench/bench_backpressure.py                 # 40 s each: bound off (as before), then the defaults
    python bench/bench_backpressure.py --seconds 20 --smoke

A native client with a 4 KiB receive buffer sends 9,940 characters (~140 sentences), flushes and
never reads. Every second: the PCM its session holds (synthesized, not sent), whether the session is
still open, the engine slots in use and the sentences waiting for one. "Off" is
session.max_audio_ahead_seconds 0 and send_stall_timeout_seconds 0 (what the server did before);
"on" is the configured defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from background import BackgroundServer, free_port  # noqa: E402
from stream_server.config import AppConfig  # noqa: E402
from stream_server.engine.requests import AudioEvent  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank. "


def held_bytes(session) -> int:
    """PCM in the session's queued sentences (what a non-reading client pins on the server)."""
    total = 0
    for item in list(session._delivery._outbox._queue):
        events = getattr(item, "events", None)
        if events is not None:
            total += sum(e.pcm.nbytes for e in list(events._queue) if isinstance(e, AudioEvent))
    return total


async def watch(server: BackgroundServer, seconds: float) -> float:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.config.server.port))
    sock.setblocking(False)
    ws = await websockets.connect(f"{server.url}/v1/tts/stream", sock=sock, max_size=None, max_queue=4)
    await ws.recv()  # ready
    (session,) = server.services.sessions.values()
    await ws.send(json.dumps({"type": "text", "text": SENTENCE * 140}))
    await ws.send(json.dumps({"type": "flush"}))
    t0, peak = time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(1)
        live = session.session_id in server.services.sessions
        held = held_bytes(session) if live else 0
        peak = max(peak, held)
        stats = server.services.engine.stats
        print(f"  t={time.monotonic() - t0:5.1f} s held={held / 1e6:6.2f} MB session_open={live} "
              f"slots={sum(stats.active_slots.values())} waiting={stats.waiting}", flush=True)
    ws.transport.abort()
    return peak


def run(label: str, seconds: float, bounded: bool) -> float:
    cfg = AppConfig()
    cfg.server.port = free_port()
    cfg.wyoming.enabled = False
    cfg.engine.warmup = False
    cfg.cache.enabled = False  # every sentence synthesized: the engine's work is what is held
    cfg.admission.enabled = False
    if not bounded:
        cfg.session.max_audio_ahead_seconds = 0
        cfg.session.send_stall_timeout_seconds = 0
    s = cfg.session
    print(f"{label}: max_audio_ahead_seconds={s.max_audio_ahead_seconds:g} "
          f"send_stall_timeout_seconds={s.send_stall_timeout_seconds:g}", flush=True)
    with BackgroundServer(cfg) as server:
        peak = asyncio.run(watch(server, seconds))
    print(f"{label}: peak held {peak / 1e6:.2f} MB", flush=True)
    return peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=40.0, help="how long each run watches")
    ap.add_argument("--smoke", action="store_true", help="the defaults only, 10 s")
    args = ap.parse_args()
    if args.smoke:
        run("on", 10.0, bounded=True)
        return 0
    off, on = run("off", args.seconds, bounded=False), run("on", args.seconds, bounded=True)
    print(f"peak audio held for a client that does not read: off {off / 1e6:.2f} MB, on {on / 1e6:.2f} MB "
          f"(x{on / off:.2f})" if off else "nothing held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
