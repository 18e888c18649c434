"""First audio of a long sentence on the ElevenLabs stream-input socket against the native socket,
same server, same sentence, in one run (alternating, so a shared machine's drift hits both):

    python bench/bench_elevenlabs_first_audio.py                  # 5 rounds, voice joe_ar
    python bench/bench_elevenlabs_first_audio.py --rounds 9 --voice joe

Each round opens a socket, sends the sentence with a flush and times the first audio: a binary
frame on the native socket, the first `audio` message on stream-input (pcm_22050 and the SDK's
default mp3_44100_128). The sentence cache is off, so every round synthesizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peer import free_port, start_ours  # noqa: E402  (bench/, beside this script)

SENTENCE = ("When you arrive at the clinic tomorrow morning, please bring your insurance card, the list of "
            "medicines you take every day, and the letter that your family doctor gave you last week.")


async def native(port: int, voice: str) -> float:
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/tts/stream?voice={voice}", max_size=None) as ws:
        await ws.recv()  # ready
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "text", "text": SENTENCE}))
        await ws.send(json.dumps({"type": "flush"}))
        while not isinstance(await ws.recv(), bytes):
            pass
        return time.perf_counter() - t0


def elevenlabs(fmt: str) -> Callable[[int, str], Awaitable[float]]:
    async def first_audio(port: int, voice: str) -> float:
        url = f"ws://127.0.0.1:{port}/v1/text-to-speech/{voice}/stream-input?output_format={fmt}"
        async with websockets.connect(url, max_size=None) as ws:
            t0 = time.perf_counter()
            await ws.send(json.dumps({"text": SENTENCE, "flush": True}))
            while not json.loads(await ws.recv()).get("audio"):
                pass
            return time.perf_counter() - t0

    return first_audio


async def measure(port: int, voice: str, rounds: int) -> dict[str, list[float]]:
    clients = {"native": native, "elevenlabs pcm_22050": elevenlabs("pcm_22050"),
               "elevenlabs mp3_44100_128": elevenlabs("mp3_44100_128")}
    times: dict[str, list[float]] = {name: [] for name in clients}
    for r in range(rounds):
        order = list(clients) if r % 2 == 0 else list(reversed(clients))
        for name in order:
            times[name].append(await clients[name](port, voice))
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--voice", default="joe_ar")
    ap.add_argument("--smoke", action="store_true", help="one round (CI: the bench still runs)")
    args = ap.parse_args()
    if args.smoke:
        args.rounds = 1
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir, open(Path(workdir) / "server.log", "w") as log:
        proc = start_ours(port, Path(workdir), log)
        try:
            asyncio.run(measure(port, args.voice, 1))  # warm-up
            times = asyncio.run(measure(port, args.voice, args.rounds))
        finally:
            proc.terminate()
            proc.wait(30)
    base = statistics.median(times["native"])
    print(f"voice {args.voice}, {len(SENTENCE)} characters, {args.rounds} rounds (median first audio)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:26s} {median:6.3f} s   ratio to native {median / base:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
