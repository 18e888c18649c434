"""Eight simultaneous sessions on the real server: each hears exactly its own sentences."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
import websockets

from stream_server.text.segmenter import split_sentences
from wsutil import Transcript, max_diff, receive_until, send_json

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767

SCRIPTS = [
    "Welcome back, traveler. The road north is closed tonight.",
    "I can help with that. Your order ships on Monday.",
    "The dragon sleeps under the mountain. Do not wake it!",
    "Turn left at the old mill. Then follow the river.",
    "It is raining in Seattle. Bring an umbrella, please.",
    "Your meeting starts in ten minutes. Shall I remind you again?",
    "The potion costs five gold coins. Do you want to buy it?",
    "Good morning. The kitchen lights are now off.",
]


def pieces(text: str, rng: random.Random) -> list[str]:
    out, i = [], 0
    while i < len(text):
        n = rng.randint(1, 6)
        out.append(text[i : i + n])
        i += n
    return out


async def one_session(server, script: str, seed: int) -> Transcript:
    rng = random.Random(seed)
    t = Transcript()
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for piece in pieces(script, rng):
            await send_json(ws, type="text", text=piece)
            await asyncio.sleep(rng.uniform(0, 0.01))  # LLM-like token pacing
        await send_json(ws, type="flush")
        await receive_until(ws, t, "flushed", timeout=180)
    return t


async def test_eight_sessions_each_get_their_own_audio(server, offline):
    server.services.engine.stats.peak_live = 0  # measure this test's sessions only
    transcripts = await asyncio.gather(
        *(one_session(server, s, i) for i, s in enumerate(SCRIPTS))
    )
    for script, t in zip(SCRIPTS, transcripts):
        expected = split_sentences(script)
        assert t.sentences() == expected
        for key, sentence in zip(t.order, expected):
            assert max_diff(t.pcm16(key), offline(sentence)) <= TOL, sentence
    # The sessions were really in the engine together, not served one after another.
    assert server.services.engine.stats.peak_live >= 4
