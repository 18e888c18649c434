"""`speed` in the native protocol (`config` message and `?speed=`): length_scale = the server's
length_scale / speed. Audio at a speed equals offline synthesis at that length_scale, and is
about 1/speed as long; a bad speed gets `invalid_speed`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import websockets

from stream_server.engine.requests import SynthesisOptions
from stream_server.server.compat import at_speed
from stream_server.server.events import SessionError
from stream_server.server.native_messages import parse_speed
from stream_server.text.spoken_form import seed_of, spoken_form
from wsutil import Transcript, max_diff, receive_until, send_json

TOL = 1e-3 + 1.0 / 32767
TEXT = "The quick brown fox jumps over the lazy dog."


def offline_at(server, voice: str, text: str, speed: float) -> np.ndarray:
    syn = server.config.synthesis
    spoken = spoken_form(text)
    options = SynthesisOptions(syn.noise_scale, syn.length_scale / speed, syn.noise_w, seed_of(spoken))
    return server.services.voices[voice].synthesize_offline(spoken, options)


async def speak(server, query: str, config: dict | None = None) -> tuple[dict, np.ndarray]:
    async with websockets.connect(f"{server.url}/v1/tts/stream?{query}", max_size=None) as ws:
        ready = json.loads(await ws.recv())
        if config is not None:
            await send_json(ws, type="config", **config)
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready", ready
        await send_json(ws, type="text", text=TEXT)
        await send_json(ws, type="flush")
        t = Transcript()
        await receive_until(ws, t, "flushed")
    (key,) = t.order
    return ready, t.pcm16(key)


@pytest.mark.slow
@pytest.mark.parametrize(
    "voice, query, config, speed",
    [
        ("joe", "voice=joe", {"speed": 2.0}, 2.0),
        ("joe", "voice=joe&speed=0.5", None, 0.5),
        ("joe_ar", "speed=1.5", None, 1.5),  # the AR voice's durations come from length_scale too
        ("joe", "voice=joe&speed=0.5", {"speed": 1.25}, 1.25),  # a config's speed replaces the query's
    ],
)
async def test_speed_equals_offline_synthesis_at_that_length_scale(server, voice, query, config, speed):
    _, got = await speak(server, query, config)
    assert max_diff(got, offline_at(server, voice, TEXT, speed)) <= TOL
    ratio = len(got) / len(offline_at(server, voice, TEXT, 1.0))
    # a phoneme lasts ceil(duration * length_scale) frames, so the whole is about 1/speed as
    # long, not exactly (measured: 0.61 at speed 2, 1.73 at speed 0.5)
    assert (ratio < 1) == (speed > 1) and ratio == pytest.approx(1 / speed, rel=0.25)


@pytest.mark.slow
async def test_a_config_without_speed_keeps_the_sessions_speed(server):
    _, got = await speak(server, "voice=joe&speed=2", {"sample_rate": 22050})
    assert max_diff(got, offline_at(server, "joe", TEXT, 2.0)) <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("bad", [3.0, 0.1, "fast", True, None])
async def test_a_bad_speed_in_config_is_an_error_and_the_session_goes_on(server, bad):
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        await ws.recv()  # ready
        frame = {"type": "config", "speed": bad} if bad is not None else {"type": "config", "speed": "nan"}
        await ws.send(json.dumps(frame))
        error = json.loads(await ws.recv())
        assert (error["type"], error["code"]) == ("error", "invalid_speed")
        assert "0.5 to 2.0" in error["message"]
        await send_json(ws, type="config", speed=1.0)
        assert json.loads(await ws.recv())["type"] == "ready"


@pytest.mark.slow
async def test_a_bad_speed_in_the_query_refuses_the_session(server):
    async with websockets.connect(f"{server.url}/v1/tts/stream?speed=abc") as ws:
        error = json.loads(await ws.recv())
        assert (error["type"], error["code"]) == ("error", "invalid_speed")
        await ws.wait_closed()
        assert ws.close_code == 1008


@pytest.mark.slow
async def test_speed_after_text_is_refused(server):
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        await ws.recv()
        await send_json(ws, type="text", text="Some text without an end")
        await send_json(ws, type="config", speed=1.5)
        error = json.loads(await ws.recv())
        assert (error["type"], error["code"]) == ("error", "config_after_text")


def test_speed_divides_the_servers_length_scale_within_0_5_to_2():
    assert at_speed(SynthesisOptions(length_scale=1.2), 2.0).length_scale == pytest.approx(0.6)
    assert parse_speed("1.5") == 1.5 and parse_speed(2) == 2.0 and parse_speed(0.5) == 0.5
    for bad in ("inf", "nan", 2.01, 0.49, [], {}, False):
        with pytest.raises(SessionError, match="speed must be a number from 0.5 to 2.0"):
            parse_speed(bad)
