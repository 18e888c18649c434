"""Backpressure on the Session itself (docs/limits.md): the ledger of audio ahead of the client,
the gate that holds sentences back, and the stall guard, with sources and clients of the test's
own (no engine, no server: tests/test_backpressure.py runs the real one)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from stream_server.config import SessionSection
from stream_server.engine.requests import AudioEvent
from stream_server.server.audio_ahead import SECONDS_PER_CHAR, AudioAhead, SubmitGate
from stream_server.server.events import Audio, Done, SentenceEnd
from stream_server.server.send_stall import StallGuard
from stream_server.server.session import Session, SessionDeps, SessionHooks
from stream_server.server.session_settings import SessionSettings, VoiceBook
from waiting import wait_until

RATE = 16000
SENTENCE = "Every sentence here is about this long."  # one second of audio from SecondSource


# --- the ledger and the gate ------------------------------------------------------------------------
def test_the_ledger_counts_what_is_held_and_what_is_still_expected():
    ahead = AudioAhead(limit=10.0)
    share = ahead.open(50)
    assert ahead.expected == pytest.approx(50 * SECONDS_PER_CHAR) and ahead.held == 0
    ahead.arrived(share, 1.0, last=False)
    assert ahead.held == 1.0 and ahead.ahead() == pytest.approx(50 * SECONDS_PER_CHAR)
    ahead.arrived(share, 0.5, last=True)  # shorter than estimated: the rest is no longer expected
    assert ahead.expected == pytest.approx(0) and ahead.held == 1.5
    ahead.sent(share, 1.0)
    assert ahead.held == pytest.approx(0.5)
    ahead.drop(share)
    ahead.drop(share)  # twice is once
    ahead.sent(share, 1.0)  # late news of a dropped sentence changes nothing
    assert ahead.ahead() == 0 and ahead.has_room()


def test_the_estimate_scales_with_speed_and_learns_a_slower_voice():
    ahead = AudioAhead(limit=10.0)
    assert ahead.open(10, length_scale=2.0).expected == pytest.approx(20 * SECONDS_PER_CHAR)
    slow = ahead.open(10)
    ahead.arrived(slow, 3.0, last=True)  # 0.3 s a character (with the other still open: 0.3 by itself)
    assert ahead.seconds_per_char == pytest.approx(0.3)
    fast = AudioAhead(limit=10.0)
    share = fast.open(100)
    fast.arrived(share, 1.0, last=True)  # faster than the default: the default stays
    assert fast.seconds_per_char == SECONDS_PER_CHAR


def test_the_gate_submits_in_order_while_there_is_room_and_always_the_first():
    ahead = AudioAhead(limit=1.0)
    submitted: list[tuple[int, object]] = []

    def submit(item: int) -> None:
        submitted.append((item, ahead.open(100)))  # 8 s estimated: far past the bound

    gate = SubmitGate(ahead, submit, skip=lambda item: item == 3)
    for item in range(5):
        gate.offer(item)
    assert [i for i, _ in submitted] == [0]  # the first goes though longer than the bound
    ahead.drop(submitted[0][1])
    gate.feed()
    assert [i for i, _ in submitted] == [0, 1]
    ahead.drop(submitted[1][1])
    gate.feed()
    ahead.drop(submitted[2][1])
    gate.feed()
    assert [i for i, _ in submitted] == [0, 1, 2, 4]  # 3 was cancelled while it waited
    gate.offer(5)
    gate.close()
    ahead.drop(submitted[3][1])
    gate.feed()
    assert [i for i, _ in submitted] == [0, 1, 2, 4] and not gate.waiting


def test_no_bound_submits_everything():
    ahead = AudioAhead(limit=0)
    submitted = []
    gate = SubmitGate(ahead, lambda i: submitted.append(ahead.open(1000)), skip=lambda i: False)
    for i in range(20):
        gate.offer(i)
    assert len(submitted) == 20


# --- on a session ----------------------------------------------------------------------------------
class SecondSource:
    """Every sentence's audio at once: one second of it, in four chunks."""

    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.cancels: list = []

    def submit(self, request, output, sink) -> None:
        self.submitted.append(request.spoken)
        loop = asyncio.get_running_loop()
        for i in range(4):
            loop.call_soon(sink, AudioEvent(request.request_id, i, np.zeros(RATE // 4, np.float32), last=i == 3))

    def cancel(self, cancel) -> None:
        self.cancels.append(cancel)


class Client:
    """What a session sent; `reading` cleared: sends of audio wait (the socket is full)."""

    def __init__(self) -> None:
        self.events: list = []
        self.reading = asyncio.Event()
        self.reading.set()

    async def emit(self, event) -> None:
        if isinstance(event, Audio):
            await self.reading.wait()
        self.events.append(event)


def make_session(
    source, client: Client, ahead: float = 0.0, stall: float = 0.0, hooks: SessionHooks | None = None
) -> Session:
    config = SessionSection(soft_sentence_chars=200, hard_sentence_chars=400, max_text_chars=10_000,
                            max_pending_chars=20_000, max_audio_ahead_seconds=ahead, send_stall_timeout_seconds=stall)
    deps = SessionDeps(source, VoiceBook({"v": RATE}), client.emit, config, hooks or SessionHooks())
    return Session(deps, SessionSettings("v", RATE))


async def test_a_client_that_stops_reading_stops_synthesis_near_the_bound():
    source, client = SecondSource(), Client()
    client.reading.clear()
    session = make_session(source, client, ahead=3.0)
    await session.start()
    await session.text(" ".join([SENTENCE] * 40))
    await session.flush()
    await wait_until(lambda: session.ahead.expected == 0, timeout=10, what="the submitted sentences' audio")
    # 3 s of bound, estimated at ~3 s a sentence: one sentence ahead, and the next crosses the line
    assert 1 <= len(source.submitted) <= 4
    assert session.ahead.held <= 3.0 + 1.0  # the bound, plus the sentence that crossed it
    client.reading.set()  # the client reads again: everything comes, in order
    await session.end()
    await asyncio.wait_for(session.wait_done(), 10)
    ends = [e for e in client.events if isinstance(e, SentenceEnd)]
    assert [e.index for e in ends] == list(range(40)) and len(source.submitted) == 40
    assert isinstance(client.events[-1], Done) and session.ahead.ahead() == pytest.approx(0)
    await session.close()


async def test_a_reading_client_gets_everything_without_waiting_on_the_bound():
    source, client = SecondSource(), Client()
    session = make_session(source, client, ahead=3.0)
    await session.start()
    await session.text(" ".join([SENTENCE] * 30))
    await session.end()
    await asyncio.wait_for(session.wait_done(), 10)
    assert len([e for e in client.events if isinstance(e, SentenceEnd)]) == 30
    await session.close()


async def test_a_send_that_stalls_ends_the_session_and_drops_its_work():
    source, client = SecondSource(), Client()
    client.reading.clear()
    stalls = []
    hooks = SessionHooks(on_stall=lambda: stalls.append(session.session_id))
    session = make_session(source, client, ahead=30.0, stall=0.2, hooks=hooks)
    await session.start()
    await session.text(" ".join([SENTENCE] * 20))
    await session.flush()
    await asyncio.wait_for(session.stalled.wait(), 10)
    assert stalls == [session.session_id]
    assert [c.session_id for c in source.cancels] == [session.session_id]  # its engine work dropped
    await asyncio.wait_for(session.wait_done(), 10)  # the pump is over
    assert session.is_idle() and session.ahead.ahead() == pytest.approx(0)
    client.reading.set()
    await session.text("More text. ")  # nothing more is sent or submitted
    submitted = len(source.submitted)
    await session.flush()
    assert len(source.submitted) == submitted and not any(isinstance(e, Audio) for e in client.events)
    await session.close()


async def test_the_stall_guard_passes_sends_that_complete_and_counts_one_stall():
    stalls = []
    guard = StallGuard(0.05, lambda: stalls.append(1))
    done = asyncio.sleep(0)
    assert await guard(done)
    assert not await guard(asyncio.Event().wait())  # never completes
    assert not await guard(asyncio.sleep(0))  # after a stall nothing goes (and no warning: it is closed)
    assert stalls == [1]
    assert await StallGuard(0)(asyncio.sleep(0))  # 0: never times out
