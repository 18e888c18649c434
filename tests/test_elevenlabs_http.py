"""ElevenLabs' HTTP API with its own clients, only the base URL changed: the `elevenlabs` SDK (its
default mp3_44100_128: convert, stream, convert_with_timestamps, stream_with_timestamps, voices),
Pipecat's ElevenLabsHttpTTSService and LiveKit's elevenlabs.TTS().synthesize (its default
mp3_22050_32). Compressed audio is judged by Whisper; PCM is compared with offline synthesis."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import numpy as np
import pytest

from stream_server.audio.formats import mulaw_encode, resample

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767
RATE = 22050  # the voice's own
TEXT = "Welcome to the clinic. How can I help you today?"
SENTENCES = ["Welcome to the clinic.", "How can I help you today?"]
MAX_WER = 0.2  # Whisper on a small CPU voice: a word in five at most


@pytest.fixture(scope="module")
def judge():
    from stream_server.intelligibility import WhisperJudge

    return WhisperJudge(beam_size=1, cpu_threads=2)


@pytest.fixture
def client(server):
    from elevenlabs.client import ElevenLabs

    return ElevenLabs(api_key="unused", base_url=server.http)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """A compressed file -> (float mono samples, sample rate), by FFmpeg (PyAV)."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        return np.concatenate(frames).astype(np.float32), stream.rate


def assert_says(judge, audio: np.ndarray, rate: int, text: str) -> None:
    from stream_server.intelligibility import word_errors

    score = word_errors(text, judge.transcribe(audio, rate))
    assert score.wer <= MAX_WER, (score.reference, score.hypothesis)


def assert_mp3_of(judge, offline, data: bytes, rate: int) -> None:
    """An mp3 at `rate` that says TEXT, as long as its sentences' offline audio (LAME pads)."""
    audio, got_rate = decode(data)
    assert got_rate == rate
    want = sum(len(offline(s)) for s in SENTENCES) / RATE
    assert abs(len(audio) / rate - want) < 0.1
    assert_says(judge, audio, rate, TEXT)


def assert_alignment(al, text: str) -> None:
    """Characters that join back to the text, at times that never go back."""
    assert "".join(al.characters) == text
    starts, ends = al.character_start_times_seconds, al.character_end_times_seconds
    assert len(starts) == len(ends) == len(text)
    assert all(a <= b for a, b in zip(starts, ends)) and starts == sorted(starts) and ends == sorted(ends)


def test_sdk_convert_and_stream(client, offline, judge):
    for call in (client.text_to_speech.convert, client.text_to_speech.stream):
        data = b"".join(call(voice_id="joe_ar", text=TEXT, model_id="eleven_multilingual_v2"))
        assert_mp3_of(judge, offline, data, 44100)


def test_sdk_with_timestamps(client, offline, judge):
    whole = client.text_to_speech.convert_with_timestamps(voice_id="joe_ar", text=TEXT)
    assert_alignment(whole.alignment, TEXT)
    assert whole.normalized_alignment == whole.alignment
    audio, _ = decode(base64.b64decode(whole.audio_base_64))
    assert whole.alignment.character_end_times_seconds[-1] <= len(audio) / 44100

    chunks = list(client.text_to_speech.stream_with_timestamps(voice_id="joe_ar", text=TEXT))
    timed = [c.alignment for c in chunks if c.alignment is not None]
    assert len(timed) == len(SENTENCES)  # one chunk a sentence, on one clock from the start
    assert timed[1].characters[0] == " " and timed[1].character_start_times_seconds[0] > 0
    joined = {k: [v for a in timed for v in getattr(a, k)] for k in
              ("characters", "character_start_times_seconds", "character_end_times_seconds")}
    assert_alignment(type(timed[0])(**joined), TEXT)
    data = b"".join(base64.b64decode(c.audio_base_64) for c in chunks)
    assert_mp3_of(judge, offline, data, 44100)


def test_sdk_voices(client, server):
    from elevenlabs.core.api_error import ApiError

    ours = sorted(server.services.voices)
    found = client.voices.search()
    assert sorted(v.voice_id for v in found.voices) == ours and found.total_count == len(ours)
    assert not found.has_more and found.next_page_token is None
    assert all(v.category == "premade" and v.name == v.voice_id for v in found.voices)
    first = client.voices.search(page_size=1)
    assert len(first.voices) == 1 and first.has_more
    second = client.voices.search(page_size=1, next_page_token=first.next_page_token)
    assert second.voices[0].voice_id != first.voices[0].voice_id
    assert [v.voice_id for v in client.voices.search(search="joe_a").voices] == ["joe_ar"]
    assert sorted(v.voice_id for v in client.voices.get_all().voices) == ours  # no aliases
    voice = client.voices.get("joe_ar")
    assert voice.voice_id == "joe_ar" and voice.settings is not None and voice.preview_url is None
    for call in (lambda: client.voices.get("no-such-voice"),
                 lambda: b"".join(client.text_to_speech.convert(voice_id="no-such-voice", text="Hello."))):
        with pytest.raises(ApiError) as caught:
            call()
        assert caught.value.status_code == 404
        assert caught.value.body["detail"]["status"] == "voice_not_found"


def test_pcm_and_ulaw_bytes(server, offline):
    url = f"{server.http}/v1/text-to-speech/joe_ar/stream"
    with httpx.Client(timeout=120) as http:
        native = http.post(url, params={"output_format": "pcm_22050"}, json={"text": TEXT})
        pcm16k = http.post(url, params={"output_format": "pcm_16000"}, json={"text": TEXT})
        ulaw = http.post(url, params={"output_format": "ulaw_8000"}, json={"text": TEXT})
    got = np.frombuffer(native.content, "<i2").astype(np.float32) / 32767
    want = np.concatenate([offline(s) for s in SENTENCES])
    assert native.headers["content-type"] == "audio/pcm"
    assert len(got) == len(want) and np.max(np.abs(got - want)) <= TOL
    # each sentence is resampled on its own (as it streams): lengths add up per sentence
    assert abs(len(pcm16k.content) // 2 - sum(len(resample(offline(s), RATE, 16000)) for s in SENTENCES)) <= 2
    assert len(pcm16k.content) % 2 == 0
    want8k = np.concatenate([resample(offline(s), RATE, 8000) for s in SENTENCES])
    assert abs(len(ulaw.content) - len(want8k)) <= 2 and ulaw.headers["content-type"] == "audio/basic"
    ref = mulaw_encode((np.clip(want8k, -1, 1) * 32767).round().astype("<i2").tobytes())
    n = min(len(ref), len(ulaw.content))
    agree = np.mean(np.frombuffer(ulaw.content[:n], np.uint8) == np.frombuffer(ref[:n], np.uint8))
    assert agree > 0.9  # the same mu-law bytes but for rounding at the sentence joins


def test_bad_requests_in_elevenlabs_shape(server):
    url = f"{server.http}/v1/text-to-speech/joe_ar"
    limit = server.config.elevenlabs.max_text_chars
    with httpx.Client(timeout=60) as http:
        fmt = http.post(url, params={"output_format": "opus_48000_32"}, json={"text": "Hi."})
        long = http.post(url, json={"text": "a" * (limit + 1)})
        empty = http.post(f"{url}/stream/with-timestamps", json={"text": "  "})
        not_json = http.post(url, content=b"{", headers={"content-type": "application/json"})
        speed = http.post(url, json={"text": "Hi.", "voice_settings": {"speed": 9}})
    assert fmt.status_code == 422 and fmt.json()["detail"]["status"] == "unsupported_output_format"
    assert "mp3_44100_128" in fmt.json()["detail"]["message"] and "pcm_16000" in fmt.json()["detail"]["message"]
    assert long.status_code == 400 and long.json()["detail"]["status"] == "max_character_limit_exceeded"
    assert empty.status_code == 422 and empty.json()["detail"]["status"] == "empty_text"
    assert not_json.status_code == 422 and not_json.json()["detail"]["status"] == "invalid_json"
    assert speed.status_code == 422 and speed.json()["detail"]["status"] == "invalid_voice_settings"


def test_keys_are_asked_in_elevenlabs_shape(keyed_server):
    from conftest import KEYS

    url = f"{keyed_server.http}/v1/text-to-speech/joe_ar/stream"
    with httpx.Client(timeout=60) as http:
        missing = http.post(url, json={"text": "Hi."})
        voices = http.get(f"{keyed_server.http}/v2/voices", headers={"xi-api-key": "wrong"})
        ok = http.get(f"{keyed_server.http}/v2/voices", headers={"xi-api-key": KEYS[0]})
    assert missing.status_code == 401 and missing.json()["detail"]["status"] == "missing_api_key"
    assert voices.status_code == 401 and voices.json()["detail"]["status"] == "invalid_api_key"
    assert ok.status_code == 200 and ok.json()["voices"]


async def test_pipecat_http_service_words(server, offline):
    pytest.importorskip("pipecat")
    import aiohttp
    from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame, TTSTextFrame
    from pipecat.services.elevenlabs.tts import ElevenLabsHttpTTSService

    from test_pipecat_tts import pipeline
    from waiting import wait_until

    async with aiohttp.ClientSession() as http:
        service = ElevenLabsHttpTTSService(api_key="unused", aiohttp_session=http, base_url=server.http,
                                           sample_rate=RATE, settings=ElevenLabsHttpTTSService.Settings(voice="joe_ar"))
        async with pipeline(service) as (worker, recorder):
            await worker.queue_frame(TTSSpeakFrame(TEXT))
            await wait_until(lambda: recorder.of(TTSStoppedFrame), timeout=120, what="the end of the speech")
            await asyncio.sleep(0.5)  # its last word's text frame follows the audio's clock
            pcm = b"".join(f.audio for f in recorder.of(TTSAudioRawFrame))
            words = [f.text.strip() for f in recorder.of(TTSTextFrame)]
    got = np.frombuffer(pcm, "<i2").astype(np.float32) / 32767
    want = np.concatenate([offline(s) for s in SENTENCES])
    assert len(got) >= len(want) and np.max(np.abs(got[: len(want)] - want)) <= TOL
    assert words == TEXT.split(), words  # "clinic." and "How" apart: the space between sentences is there


async def test_livekit_synthesize_default_mp3(server, offline, judge):
    pytest.importorskip("livekit.agents")
    import aiohttp
    from livekit.plugins import elevenlabs

    async with aiohttp.ClientSession() as http:
        tts = elevenlabs.TTS(api_key="unused", base_url=f"{server.http}/v1", voice_id="joe_ar", http_session=http)
        try:
            frames = [event.frame async for event in tts.synthesize(TEXT)]
        finally:
            await tts.aclose()
    rate = frames[0].sample_rate
    audio = np.frombuffer(b"".join(bytes(f.data) for f in frames), "<i2").astype(np.float32) / 32767
    assert rate == 22050
    assert abs(len(audio) / rate - sum(len(offline(s)) for s in SENTENCES) / RATE) < 0.15
    assert_says(judge, audio, rate, TEXT)
