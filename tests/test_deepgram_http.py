"""Deepgram's REST TTS `POST /v1/speak` with the real clients: the Deepgram SDK (its defaults: mp3),
Pipecat's DeepgramHttpTTSService and LiveKit's deepgram.TTS(...).synthesize. Words are judged by the
offline Whisper judge; errors come in Deepgram's shape and leave the server healthy."""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np
import pytest
import soundfile as sf

from stream_server.intelligibility import word_errors
from waiting import wait_until

pytestmark = pytest.mark.slow

TEXT = "Please call me back when you have a moment this afternoon."
MAX_WER = 0.2  # one word of ten may be misheard


@pytest.fixture(scope="module")
def judge():
    from stream_server.intelligibility import WhisperJudge

    return WhisperJudge(cpu_threads=1)


@pytest.fixture(scope="module")
def deepgram(server):
    from deepgram import DeepgramClient
    from deepgram.environment import DeepgramClientEnvironment

    ws = server.http.replace("http", "ws", 1)
    env = DeepgramClientEnvironment(base=server.http, production=ws, agent=ws, agent_rest=server.http)
    return DeepgramClient(api_key="unused", environment=env)


def assert_heard(judge, audio: np.ndarray, rate: int, text: str = TEXT) -> None:
    score = word_errors(text, judge.transcribe(audio, rate))
    assert score.wer <= MAX_WER, score


def test_sdk_defaults_are_streamed_mp3_with_the_right_words(deepgram, judge):
    data = b"".join(deepgram.speak.v1.audio.generate(text=TEXT, model="aura-2-thalia-en"))
    assert data[:3] == b"ID3" or data[0] == 0xFF  # an mp3 stream (LAME frames)
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == 22050  # Deepgram's mp3 rate
    assert_heard(judge, audio, rate)


def test_sdk_linear16_raw_at_16k_is_exact_pcm(deepgram, server, judge):
    with deepgram.speak.v1.audio.with_raw_response.generate(
        text=TEXT, model="aura-2-thalia-en", encoding="linear16", sample_rate=16000, container="none"
    ) as response:
        data = b"".join(response.data)
        headers = response.headers
    assert headers["content-type"] == "application/octet-stream"
    assert headers["dg-model-name"] == "aura-2-thalia-en" and headers["dg-char-count"] == str(len(TEXT))
    assert headers["dg-request-id"]
    assert len(data) % 2 == 0 and not data.startswith(b"RIFF")
    audio = np.frombuffer(data, "<i2").astype(np.float32) / 32767
    # the same text at the voice's own rate, as a WAV (Deepgram's linear16 default container)
    wav = httpx.post(f"{server.http}/v1/speak?encoding=linear16&sample_rate=22050", json={"text": TEXT})
    with wave.open(io.BytesIO(wav.content)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (22050, 2, 1)
        native = len(wav.content) - 44
    assert abs(len(audio) - native / 2 * 16000 / 22050) <= 2 * 3  # resampled per sentence: a sample or two
    assert_heard(judge, audio, 16000)


def test_mulaw_wav_and_whole_formats(server):
    mulaw = httpx.post(f"{server.http}/v1/speak?encoding=mulaw", json={"text": "Hello there."})
    assert mulaw.status_code == 200 and mulaw.headers["content-type"] == "audio/wav"
    assert mulaw.content[20:22] == b"\x07\x00"  # the WAV format tag of G.711 mu-law
    audio, rate = sf.read(io.BytesIO(mulaw.content), dtype="float32")
    assert rate == 8000 and len(audio) > 4000
    for encoding, rate in (("flac", 48000), ("opus", 48000)):
        r = httpx.post(f"{server.http}/v1/speak?encoding={encoding}", json={"text": "Hello there."})
        assert r.status_code == 200, r.text
        audio, got = sf.read(io.BytesIO(r.content), dtype="float32")
        assert got == rate and len(audio) > rate // 2


async def test_pipecat_http_service_speaks_the_words(server, judge):
    pytest.importorskip("pipecat")
    import aiohttp
    from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame
    from pipecat.services.deepgram.tts import DeepgramHttpTTSService

    from test_pipecat_tts import RATE, pipeline

    async with aiohttp.ClientSession() as http:
        service = DeepgramHttpTTSService(api_key="unused", aiohttp_session=http, base_url=server.http,
                                         sample_rate=RATE)
        async with pipeline(service) as (worker, recorder):
            await worker.queue_frame(TTSSpeakFrame(TEXT))
            await wait_until(lambda: recorder.of(TTSStoppedFrame), timeout=120, what="Pipecat's TTSStoppedFrame")
            pcm = b"".join(f.audio for f in recorder.of(TTSAudioRawFrame))
    assert_heard(judge, np.frombuffer(pcm, "<i2").astype(np.float32) / 32767, RATE)


async def test_livekit_synthesize_speaks_the_words(server, judge):
    pytest.importorskip("livekit.agents")
    import aiohttp
    from livekit.plugins import deepgram

    async with aiohttp.ClientSession() as http:
        tts = deepgram.TTS(api_key="unused", base_url=f"{server.http}/v1/speak", sample_rate=24000,
                           http_session=http)
        frames = [bytes(ev.frame.data) async for ev in tts.synthesize(TEXT)]
        await tts.aclose()
    assert_heard(judge, np.frombuffer(b"".join(frames), "<i2").astype(np.float32) / 32767, 24000)


@pytest.mark.parametrize(("query", "body", "status", "code"), [
    ("", {}, 400, "missing_text"),
    ("", {"text": "   "}, 400, "missing_text"),
    ("encoding=aac", {"text": "Hi."}, 400, "unsupported_encoding"),
    ("encoding=wma", {"text": "Hi."}, 400, "unsupported_encoding"),
    ("encoding=mp3&sample_rate=48000", {"text": "Hi."}, 400, "unsupported_sample_rate"),
    ("encoding=linear16&container=ogg", {"text": "Hi."}, 400, "unsupported_container"),
    ("encoding=mp3&bit_rate=1000", {"text": "Hi."}, 400, "unsupported_bit_rate"),
    ("speed=9", {"text": "Hi."}, 400, "unsupported_speed"),
    ("", {"text": "a" * 2001}, 413, "text_too_long"),
])
def test_errors_have_deepgrams_shape(server, query, body, status, code):
    r = httpx.post(f"{server.http}/v1/speak?{query}", json=body)
    assert r.status_code == status, r.text
    error = r.json()
    assert error["err_code"] == code and error["err_msg"] and error["request_id"]
    assert r.headers["dg-error"]
    assert httpx.get(f"{server.http}/healthz").status_code == 200


def test_the_sdk_raises_its_bad_request_error(deepgram):
    from deepgram.errors.bad_request_error import BadRequestError

    with pytest.raises(BadRequestError) as raised:
        b"".join(deepgram.speak.v1.audio.generate(text=TEXT, encoding="alaw"))
    assert raised.value.body["err_code"] == "unsupported_encoding"


def test_bad_json_is_400(server):
    r = httpx.post(f"{server.http}/v1/speak", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["err_code"] == "invalid_json"
