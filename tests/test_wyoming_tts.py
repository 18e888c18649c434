"""The Wyoming TTS server over a real TCP connection, driven by the `wyoming` package's client."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767


def connect(server) -> AsyncTcpClient:
    return AsyncTcpClient(server.config.wyoming.host, server.config.wyoming.port)


async def read(client, timeout: float = 60.0):
    event = await asyncio.wait_for(client.read_event(), timeout)
    assert event is not None, "server closed the connection"
    return event


async def read_until(client, done) -> list:
    events = []
    while True:
        events.append(await read(client))
        if done(events[-1]):
            return events


def runs(events) -> list[tuple[AudioStart, np.ndarray]]:
    """audio-start/chunk/stop runs -> (start, float audio)."""
    out, start, pcm = [], None, bytearray()
    for e in events:
        if AudioStart.is_type(e.type):
            assert start is None
            start, pcm = AudioStart.from_event(e), bytearray()
        elif AudioChunk.is_type(e.type):
            chunk = AudioChunk.from_event(e)
            assert start is not None and (chunk.rate, chunk.width, chunk.channels) == (22050, 2, 1)
            pcm += chunk.audio
        elif AudioStop.is_type(e.type):
            assert start is not None
            out.append((start, np.frombuffer(bytes(pcm), "<i2").astype(np.float32) / 32767))
            start = None
    assert start is None
    return out


def close(got: np.ndarray, want: np.ndarray) -> bool:
    return len(got) == len(want) and float(np.max(np.abs(got - want))) <= TOL


async def test_describe_lists_voices_and_streaming(server):
    async with connect(server) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await read(client))
        await client.write_event(Ping(text="x").event())
        assert Pong.from_event(await read(client)).text == "x"
    (program,) = info.tts
    assert program.supports_synthesize_streaming and program.installed
    # the real voices only, each described; aliases ("alloy") are not listed but are spoken
    assert sorted(v.name for v in program.voices) == sorted(server.services.voices)
    assert all(v.languages == ["en_US"] for v in program.voices)
    descriptions = {v.name: v.description for v in program.voices}
    assert descriptions["joe"] == "joe: Piper VITS, en_US, 22050 Hz"
    assert descriptions["joe_ar"].startswith("joe_ar: autoregressive") and "(default)" in descriptions["joe_ar"]


async def test_synthesize_is_one_audio_run(server, offline):
    text = "Hello from Wyoming. This is the second sentence."
    async with connect(server) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="joe_ar")).event())
        events = await read_until(client, lambda e: AudioStop.is_type(e.type))
    ((start, audio),) = runs(events)
    assert (start.rate, start.width, start.channels) == (22050, 2, 1)
    want = np.concatenate([offline("Hello from Wyoming."), offline("This is the second sentence.")])
    assert close(audio, want)


async def test_streaming_gives_a_run_per_sentence_then_stopped(server, offline):
    pieces = ["The first", " streamed sentence", ". And the", " second one", "! Last"]
    sentences = ["The first streamed sentence.", "And the second one!", "Last"]
    async with connect(server) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="alloy")).event())
        for piece in pieces:
            await client.write_event(SynthesizeChunk(text=piece).event())
        # clients send the whole text as a legacy `synthesize` too; it must not be spoken again
        await client.write_event(Synthesize(text="".join(pieces)).event())
        await client.write_event(SynthesizeStop().event())
        events = await read_until(client, lambda e: SynthesizeStopped.is_type(e.type))
        # the connection stays usable: a describe afterwards is answered
        await client.write_event(Describe().event())
        assert Info.is_type((await read(client)).type)
    got = runs(events)
    assert len(got) == len(sentences)
    for (_, audio), sentence in zip(got, sentences):
        assert close(audio, offline(sentence))


@pytest.mark.parametrize(
    "event, code",
    [
        (Synthesize(text="Hello.", voice=SynthesizeVoice(name="nobody")), "unknown_voice"),
        (Synthesize(text="   "), "empty_text"),
        (Synthesize(text="x " * 1001), "text_too_long"),
        (Synthesize(text="x " * 600_000), "event_too_large"),  # 1.2 MB > wyoming.max_event_bytes
        (Synthesize(text=5), "invalid_event"),
        (SynthesizeStart(voice=SynthesizeVoice(name="nobody")), "unknown_voice"),
    ],
)
async def test_bad_input_is_an_error_event_and_the_connection_goes_on(server, event, code):
    async with connect(server) as client:
        await client.write_event(event.event())
        error = Error.from_event(await read(client))
        assert error.code == code and error.text
        if SynthesizeStart.is_type(event.event().type):
            await client.write_event(SynthesizeChunk(text="Ignored.").event())
            await client.write_event(SynthesizeStop().event())
            assert SynthesizeStopped.is_type((await read(client)).type)
        await client.write_event(Synthesize(text="Still here.").event())
        events = await read_until(client, lambda e: AudioStop.is_type(e.type))
    assert len(runs(events)) == 1


def test_a_taken_wyoming_port_does_not_stop_the_server(caplog):
    """Someone already runs wyoming-piper on the port: HTTP and WebSocket still serve, and the log
    says why Wyoming is off and how to fix it."""
    import socket

    import httpx

    from background import BackgroundServer, free_port
    from stream_server.config import AppConfig

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = AppConfig()
        config.server.port = free_port()
        config.wyoming.port = taken.getsockname()[1]
        config.engine.warmup = False
        config.cache.enabled = False
        caplog.set_level("ERROR", logger="stream_server")
        with BackgroundServer(config) as server:
            assert httpx.get(server.http + "/readyz").json() == {"status": "ready"}
        message = " ".join(r.getMessage() for r in caplog.records)
        assert f"cannot listen on 127.0.0.1:{config.wyoming.port}" in message and "wyoming.port" in message
