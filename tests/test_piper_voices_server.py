"""Several Piper voices in one server: a copy of joe with its own json in a voices_dir (16 kHz,
British espeak voice), a tiny random three-speaker voice (tests/piper_test_voices.py) beside joe
and joe_ar. Every session speaks its own voice (and speaker): its audio equals that voice's
offline synthesis. Nothing is downloaded."""

from __future__ import annotations

import asyncio
import json
import os

import httpx
import numpy as np
import pytest
import websockets
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error as WyError
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from background import BackgroundServer, free_port
from piper_test_voices import copy_joe
from stream_server.config import AppConfig, VoiceSection
from stream_server.engine.requests import SPEAKER_OPTION, SynthesisOptions
from stream_server.text.spoken_form import seed_of, spoken_form
from wsutil import Transcript, max_diff, receive_until, send_json

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767  # chunk joins plus s16 rounding
TEST_VOICE = "en_US-testvoice-medium"


@pytest.fixture(scope="module")
def voices_server(tmp_path_factory, tiny_voices, redis_server):
    directory = tmp_path_factory.mktemp("voices_dir")
    copy_joe(directory, TEST_VOICE, audio={"sample_rate": 16000, "quality": "medium"},
             espeak={"voice": "en-gb-x-rp"}, language=None)
    config = AppConfig(
        voices={
            "joe_ar": {"kind": "ar"},
            "joe": VoiceSection(),
            "multi": VoiceSection(model=str(tiny_voices["multi"].onnx), speaker="bob"),
        },
        voices_dir=str(directory),
    )
    config.server.port = free_port()
    config.wyoming.port = free_port()
    config.engine.max_slots = 4
    # voices, not admission, are tested here: the capacity calibrated at start on a loaded machine
    # (RTF 0.53 at one session seen) would refuse the side-by-side sessions
    config.admission.enabled = False
    config.cache.redis_url = redis_server.url
    config.cache.key_prefix = "tts:test-piper-voices"  # apart from the other servers' entries
    config.cache.local_max_mb = 0
    os.environ.pop("REDIS_URL", None)
    with BackgroundServer(config) as running:
        yield running


def offline(server, voice: str, text: str, speaker: str | None = None) -> np.ndarray:
    """What a session on `voice` (and `speaker`) must send for one sentence, at the voice's rate."""
    syn = server.config.synthesis
    spoken = spoken_form(text)
    extra = ((SPEAKER_OPTION, speaker),) if speaker is not None else ()
    options = SynthesisOptions(syn.noise_scale, syn.length_scale, syn.noise_w, seed_of(spoken), extra=extra)
    return server.services.voices[voice].synthesize_offline(spoken, options)


async def speak(server, query: str, text: str) -> tuple[dict, np.ndarray]:
    """One sentence on a native session opened with `query`: (its ready message, its audio)."""
    async with websockets.connect(f"{server.url}/v1/tts/stream?{query}", max_size=None) as ws:
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready", ready
        await send_json(ws, type="text", text=text)
        await send_json(ws, type="flush")
        t = Transcript()
        await receive_until(ws, t, "flushed")
    (key,) = t.order
    return ready, t.pcm16(key)


async def test_the_voice_list_says_what_each_voice_is(voices_server):
    async with httpx.AsyncClient(base_url=voices_server.http) as http:
        voices = {v["name"]: v for v in (await http.get("/v1/voices")).json()["voices"]}
    assert list(voices) == ["joe_ar", "joe", "multi", TEST_VOICE]
    native = {
        "name": TEST_VOICE, "kind": "piper_vits", "language": "en_GB", "sample_rate": 16000,
        "default": False, "speakers": [], "espeak_voice": "en-gb-x-rp",
    }
    assert {k: voices[TEST_VOICE][k] for k in native} == native  # and ElevenLabs' fields:
    assert voices[TEST_VOICE]["voice_id"] == TEST_VOICE and voices[TEST_VOICE]["labels"]["language"] == "en_GB"
    assert voices["multi"]["speakers"] == ["alice", "bob", "carol"] and voices["multi"]["sample_rate"] == 16000
    assert voices["joe_ar"]["default"] and voices["joe_ar"]["kind"] == "ar"
    assert voices["joe"]["language"] == "en_US"


async def test_two_piper_voices_side_by_side_each_speak_their_own(voices_server):
    text = "Dance in the bath, tomato."
    (ready_joe, joe), (ready_test, test) = await asyncio.gather(
        speak(voices_server, "voice=joe", text),
        speak(voices_server, f"voice={TEST_VOICE}&sample_rate=16000", text),
    )
    assert (ready_joe["voice"], ready_test["voice"]) == ("joe", TEST_VOICE)
    assert max_diff(joe, offline(voices_server, "joe", text)) <= TOL
    assert max_diff(test, offline(voices_server, TEST_VOICE, text)) <= TOL
    # its own phonemes (British), not joe's at another rate
    backends = voices_server.services.voices
    assert backends[TEST_VOICE].voice.phoneme_ids(text) != backends["joe"].voice.phoneme_ids(text)


async def test_each_session_speaks_its_speaker(voices_server):
    text = "Hello there, how are you?"
    (ready_default, default), (ready_carol, carol) = await asyncio.gather(
        speak(voices_server, "voice=multi&sample_rate=16000", text),
        speak(voices_server, "voice=multi%23carol&sample_rate=16000", text),
    )
    assert (ready_default["voice"], ready_carol["voice"]) == ("multi", "multi#carol")
    assert max_diff(default, offline(voices_server, "multi", text)) <= TOL  # the configured speaker, bob
    assert max_diff(default, offline(voices_server, "multi", text, "bob")) <= TOL
    assert max_diff(carol, offline(voices_server, "multi", text, "carol")) <= TOL
    _, by_number = await speak(voices_server, "voice=multi%232&sample_rate=16000", text)  # carol's id
    assert max_diff(by_number, carol) <= TOL


async def test_unknown_speakers_are_refused(voices_server):
    async with websockets.connect(f"{voices_server.url}/v1/tts/stream?voice=multi%23dave") as ws:
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "unknown_speaker"
        assert "dave" in error["message"] and "alice, bob, carol" in error["message"]
        await ws.wait_closed()
        assert ws.close_code == 1008
    async with websockets.connect(f"{voices_server.url}/v1/tts/stream") as ws:
        await ws.recv()  # ready
        await send_json(ws, type="config", voice="joe#alice")
        error = json.loads(await ws.recv())
        assert (error["type"], error["code"]) == ("error", "unknown_speaker")
        assert "single speaker" in error["message"]
        await send_json(ws, type="config", voice="multi#alice")  # the session goes on
        assert json.loads(await ws.recv())["voice"] == "multi#alice"


async def test_a_sentence_is_cached_per_voice(voices_server):
    text = "The cache keeps every voice apart."
    async with websockets.connect(f"{voices_server.url}/v1/tts/stream?voice=joe", max_size=None) as ws:
        await ws.recv()
        t = Transcript()
        await send_json(ws, type="text", text=text)
        await send_json(ws, type="flush")
        await receive_until(ws, t, "flushed")
    ends = {}
    for query in (f"voice={TEST_VOICE}", "voice=multi", "voice=multi%23alice", f"voice={TEST_VOICE}"):
        async with websockets.connect(f"{voices_server.url}/v1/tts/stream?{query}", max_size=None) as ws:
            await ws.recv()
            t = Transcript()
            await send_json(ws, type="text", text=text)
            await send_json(ws, type="flush")
            await receive_until(ws, t, "flushed")
        ends.setdefault(query, []).append(next(m for m in t.messages if m["type"] == "sentence_end")["cached"])
    assert ends == {f"voice={TEST_VOICE}": [False, True], "voice=multi": [False], "voice=multi%23alice": [False]}


def wyoming(server) -> AsyncTcpClient:
    return AsyncTcpClient(server.config.wyoming.host, server.config.wyoming.port)


async def wyoming_audio(server, voice: SynthesizeVoice, text: str) -> tuple[int, np.ndarray]:
    pcm, rate = bytearray(), None
    async with wyoming(server) as client:
        await client.write_event(Synthesize(text=text, voice=voice).event())
        while True:
            event = await asyncio.wait_for(client.read_event(), 60)
            assert not WyError.is_type(event.type), WyError.from_event(event).text
            if AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                pcm += chunk.audio
                rate = chunk.rate
            elif AudioStop.is_type(event.type):
                return rate, np.frombuffer(bytes(pcm), "<i2").astype(np.float32) / 32767


async def test_wyoming_describes_each_voices_language_and_speakers(voices_server):
    async with wyoming(voices_server) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await asyncio.wait_for(client.read_event(), 30))
    voices = {v.name: v for v in info.tts[0].voices}
    assert voices[TEST_VOICE].languages == ["en_GB"] and voices["joe"].languages == ["en_US"]
    assert [s.name for s in voices["multi"].speakers] == ["alice", "bob", "carol"]
    assert voices["joe"].speakers is None
    assert "alloy" not in voices  # aliases are spoken but not listed (Home Assistant's picker)
    assert voices["multi"].description and "16000 Hz" in voices["multi"].description


async def test_wyoming_picks_a_speaker_or_a_language(voices_server):
    text = "Hello there, how are you?"
    rate, alice = await wyoming_audio(voices_server, SynthesizeVoice(name="multi", speaker="alice"), text)
    assert rate == 16000 and max_diff(alice, offline(voices_server, "multi", text, "alice")) <= TOL
    rate, british = await wyoming_audio(voices_server, SynthesizeVoice(language="en_GB"), text)
    assert rate == 16000 and max_diff(british, offline(voices_server, TEST_VOICE, text)) <= TOL
    rate, english = await wyoming_audio(voices_server, SynthesizeVoice(language="en_US"), text)
    assert rate == 22050 and max_diff(english, offline(voices_server, "joe_ar", text)) <= TOL  # the default
