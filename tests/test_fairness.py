"""Fairness with the sentence cache on: a session that pastes a long text must not starve another
session's sentences. The cache hands the engine each sentence under its real session, so the
scheduler's per-session priorities (heads first, least-buffered first, prefetch only with slack)
hold as they do without the cache."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from stream_server.train.corpus import training_sentences
from waiting import wait_until
from wsutil import send_json

pytestmark = pytest.mark.slow

RATE = 22050  # s16le at the session default


def long_text(chars: int) -> str:
    """Distinct sentences (never in the cache yet) adding up to `chars` characters."""
    out, n = [], 0
    for sentence in training_sentences(400, seed=1234):
        out.append(sentence)
        n += len(sentence) + 1
        if n >= chars:
            break
    return " ".join(out)


async def flood(server, text: str, started: asyncio.Event, stop: asyncio.Event) -> int:
    """A client that pastes `text` (in messages within the server's limit) and reads whatever
    comes until told to stop; returns the audio bytes it got."""
    got = 0
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        await ws.recv()
        limit = server.config.session.max_text_chars
        for i in range(0, len(text), limit):
            await send_json(ws, type="text", text=text[i : i + limit])
        await send_json(ws, type="flush")
        started.set()
        while not stop.is_set():
            try:
                frame = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            if isinstance(frame, bytes):
                got += len(frame)
    return got


async def reply_and_listen(ws, text: str, sentences: int) -> list[float]:
    """Send a reply of several sentences at once (as an LLM's whole answer) and play it in real
    time from its first chunk, sentence after sentence: the gaps the listener hears."""
    await send_json(ws, type="text", text=text)
    await send_json(ws, type="flush")
    playhead, gaps, ended = None, [], 0
    while ended < sentences:
        frame = await asyncio.wait_for(ws.recv(), 120)
        now = time.perf_counter()
        if isinstance(frame, bytes):
            if playhead is not None and now > playhead:
                gaps.append(now - playhead)
            playhead = max(playhead or now, now) + len(frame) / 2 / RATE
        elif json.loads(frame)["type"] == "sentence_end":
            ended += 1
    return gaps


async def test_a_pasted_long_text_does_not_starve_another_session(server):
    assert server.config.cache.enabled  # the point: the cache is on
    text = long_text(6000)
    started, stop = asyncio.Event(), asyncio.Event()
    flooder = asyncio.create_task(flood(server, text, started, stop))
    await asyncio.wait_for(started.wait(), 60)
    reply = " ".join(training_sentences(8, seed=4321)[:5])
    try:
        async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
            await ws.recv()
            gaps = await reply_and_listen(ws, reply, sentences=5)
    finally:
        stop.set()
        flooded = await flooder
    worst_gap = max(gaps, default=0.0)
    assert worst_gap <= 1.0, f"the reply stalled {worst_gap:.2f} s while another session pasted a long text"
    assert flooded > 0  # the long text was being spoken all along
    stats = server.services.engine.stats
    await wait_until(lambda: not server.services.sessions and stats.waiting == 0
                     and sum(stats.active_slots.values()) == 0,
                     timeout=60, what="the engine to drop the long text's sentences after its client left")
