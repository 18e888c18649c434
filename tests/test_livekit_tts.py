"""LiveKit Agents' own TTS plugins pointed at our server: `deepgram.TTS(base_url=...)` on /v1/speak
and `elevenlabs.TTS(base_url=...)` on multi-stream-input. A stream pushed text word by word speaks
our synthesis, and its first sentence is heard before the last text is pushed."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from waiting import wait_until

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767
RATE = 22050
SENTENCES = ["Hello there, this is the first sentence.", "And here comes the second one.", "The last."]


@pytest.fixture
def livekit():
    return pytest.importorskip("livekit.agents")


async def speak(tts) -> np.ndarray:
    """Push the sentences word by word; the last one only once audio has come."""
    stream = tts.stream()
    frames: list[bytes] = []

    async def read() -> None:
        async for event in stream:
            frames.append(bytes(event.frame.data))

    reader = asyncio.create_task(read())
    try:
        for word in " ".join(SENTENCES[:-1]).split(" "):
            stream.push_text(word + " ")
        await wait_until(lambda: frames or reader.done(), timeout=120, what="audio before the last sentence")
        assert frames, "the stream ended without audio"
        stream.push_text(SENTENCES[-1])
        stream.flush()
        stream.end_input()
        await asyncio.wait_for(reader, 120)
    finally:
        reader.cancel()
        await stream.aclose()
        await tts.aclose()
    return np.frombuffer(b"".join(frames), "<i2").astype(np.float32) / 32767


def assert_spoken(got: np.ndarray, offline) -> None:
    want = np.concatenate([offline(s) for s in SENTENCES])
    assert len(got) == len(want) and np.max(np.abs(got - want)) <= TOL


async def test_livekit_deepgram_plugin(server, offline, livekit):
    import aiohttp
    from livekit.plugins import deepgram

    async with aiohttp.ClientSession() as http:
        tts = deepgram.TTS(api_key="unused", base_url=f"{server.url}/v1/speak", sample_rate=RATE, http_session=http)
        assert_spoken(await speak(tts), offline)


async def test_livekit_elevenlabs_plugin(server, offline, livekit):
    import aiohttp
    from livekit.plugins import elevenlabs

    async with aiohttp.ClientSession() as http:
        tts = elevenlabs.TTS(api_key="unused", base_url=f"{server.http}/v1", voice_id="joe_ar",
                             encoding="pcm_22050", http_session=http)
        assert_spoken(await speak(tts), offline)


async def test_livekit_elevenlabs_plugin_with_its_default_mp3(server, livekit):
    """The plugin as it comes (mp3_22050_32 on multi-stream-input): Whisper hears the words."""
    import aiohttp
    from livekit.plugins import elevenlabs

    from heard import word_error_rate

    async with aiohttp.ClientSession() as http:
        tts = elevenlabs.TTS(api_key="unused", base_url=f"{server.http}/v1", voice_id="joe", http_session=http)
        assert tts.sample_rate == RATE
        audio = await speak(tts)
    assert word_error_rate(" ".join(SENTENCES), audio, RATE) <= 0.1
