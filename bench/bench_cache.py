"""Sentence cache benchmark: first-audio latency of a sentence synthesized (uncached) and of the
same sentence replayed from the cache, in one run against one real server and its private
redis-server.

    python bench/bench_cache.py                # 8 sentences, each uncached then cached
    python bench/bench_cache.py --local-lru    # hits served by the in-process LRU, not Redis
    python bench/bench_cache.py --smoke        # 2 sentences (CI)

One session at a time, one sentence per session. First-audio latency: from sending the `flush`
that completes the sentence to receiving its first audio byte. By default the in-process LRU is
off, so every hit is a Redis round trip (the slower path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test harness that runs a real server in-process

from background import BackgroundServer  # noqa: E402
from stream_server.config import AppConfig  # noqa: E402

SENTENCES = [
    "Welcome back, traveler, the road north is closed until the storm passes.",
    "I found three restaurants near you, and the closest one opens at noon.",
    "Your package was delivered this morning and left at the front door.",
    "The blacksmith needs more iron ore before the sun goes down tonight.",
    "It will be sunny tomorrow with a high of twenty degrees.",
    "I set a timer for fifteen minutes, just as you asked.",
    "The castle gates open at dawn, so keep your sword ready.",
    "Sorry, I did not catch that, could you say it again please?",
]


async def first_audio(url: str, text: str) -> tuple[float, bool]:
    """Seconds from the completing frame to the first audio byte, and the sentence's `cached`."""
    async with websockets.connect(f"{url}/v1/tts/stream", max_size=None) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "text", "text": text}))
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "flush"}))
        latency, cached = None, None
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                latency = latency or time.perf_counter() - t0
                continue
            msg = json.loads(frame)
            if msg["type"] == "sentence_end":
                cached = msg["cached"]
            elif msg["type"] == "flushed":
                return latency, cached


async def run(url: str, sentences: list[str]) -> dict[bool, list[float]]:
    results: dict[bool, list[float]] = {False: [], True: []}
    for text in sentences:
        for expect_cached in (False, True):
            latency, cached = await first_audio(url, text)
            if cached != expect_cached:
                raise SystemExit(f"expected cached={expect_cached} for {text!r}, got {cached}")
            results[cached].append(latency)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=len(SENTENCES))
    ap.add_argument("--local-lru", action="store_true", help="keep the in-process LRU in front of Redis")
    ap.add_argument("--smoke", action="store_true", help="tiny CI run: 2 sentences")
    args = ap.parse_args()
    n = 2 if args.smoke else max(1, min(args.sentences, len(SENTENCES)))
    cfg = AppConfig()
    cfg.server.port = 0
    cfg.cache.local_max_mb = cfg.cache.local_max_mb if args.local_lru else 0
    cfg.wyoming.enabled = False  # no fixed TCP port: several servers may run side by side
    cfg.admission.enabled = False  # every session served (bench_admission.py measures refusals)
    with BackgroundServer(cfg) as srv:
        mode = srv.services.cache.mode
        results = asyncio.run(run(srv.url, SENTENCES[:n]))
    store = f"{mode} Redis" + (" + in-process LRU" if args.local_lru else "")
    for cached, label in ((False, "uncached (synthesized)"), (True, f"cached ({store})")):
        lat = sorted(results[cached])
        print(f"{label:>40}: first-audio p50={1000 * statistics.median(lat):7.1f} ms "
              f"mean={1000 * statistics.fmean(lat):7.1f} ms max={1000 * lat[-1]:7.1f} ms "
              f"({len(lat)} sentences)", flush=True)
    speedup = statistics.median(results[False]) / statistics.median(results[True])
    print(f"{'cached / uncached':>40}: first audio x{speedup:.0f} faster (p50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
