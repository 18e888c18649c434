"""OpenAI-compatible POST /v1/audio/speech, driven by the official `openai` client against the
real server."""

from __future__ import annotations

import base64
import io
import json
import wave

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from stream_server.audio.formats import resample

pytestmark = pytest.mark.slow

TEXT = "Hello there. How are you today?"
SENTENCES = ["Hello there.", "How are you today?"]
RATE = 24000


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.http + "/v1", api_key="x", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def reference(offline):
    """The offline synthesis of TEXT's sentences, each resampled to 24 kHz, joined."""
    return np.concatenate([resample(offline(s), 22050, RATE) for s in SENTENCES])


def pcm16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767


def speak(client, **kw) -> bytes:
    args = dict(model="tts-1", voice="alloy", input=TEXT)
    return client.audio.speech.create(**(args | kw)).content


def test_pcm_is_24k_s16_and_equals_offline(client, reference):
    got = pcm16(speak(client, response_format="pcm"))
    assert abs(len(got) - len(reference)) <= 2 * len(SENTENCES)  # a sample or so per sentence
    n = min(len(got), len(reference))
    assert np.max(np.abs(got[:n] - reference[:n])) <= 3e-3


def test_wav_header_and_length_match_pcm(client):
    pcm = speak(client, response_format="pcm", input="The same sentence twice.")
    data = speak(client, response_format="wav", input="The same sentence twice.")
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        frames = w.readframes(10**9)
    assert frames == pcm and len(data) == 44 + len(pcm)  # same seed, same audio
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == RATE and len(audio) == len(pcm) // 2
    assert 0.8 < len(audio) / RATE < 4.0  # a short sentence


@pytest.mark.parametrize("fmt", ["flac", "mp3", "opus"])
def test_compressed_formats_decode(client, reference, fmt):
    data = speak(client, response_format=fmt)
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE and audio.ndim == 1
    # lossy codecs pad (mp3: encoder delay and frame padding): lengths agree within 0.1 s
    assert abs(len(audio) - len(reference)) <= (2 if fmt == "flac" else 0.1 * RATE)
    if fmt == "flac":
        assert np.max(np.abs(audio[: len(reference)] - reference[: len(audio)])) <= 3e-3


def test_streamed_wav_arrives_in_pieces(client, reference):
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input=TEXT, response_format="wav"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        pieces = list(response.iter_bytes())
    data = b"".join(pieces)
    assert data[:4] == b"RIFF" and data[40:44] == b"\xff\xff\xff\xff"  # size unknown when streamed
    got = pcm16(data[44:])
    assert abs(len(got) - len(reference)) <= 2 * len(SENTENCES)
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == RATE and len(audio) == len(got)


def test_sse_deltas_then_done(client, reference):
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="coral", input=TEXT, response_format="pcm", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "speech.audio.done" and set(kinds[:-1]) == {"speech.audio.delta"}
    assert len(kinds) >= 3  # audio arrives in several deltas (two sentences, first chunk small)
    assert events[-1]["usage"]["input_tokens"] > 0
    got = pcm16(b"".join(base64.b64decode(e["audio"]) for e in events[:-1]))
    assert abs(len(got) - len(reference)) <= 2 * len(SENTENCES)


def test_speed_maps_to_length_scale(client, server):
    from stream_server.engine.requests import SynthesisOptions
    from stream_server.server.session import sentence_seed

    sentence = "Speed changes the length of speech."
    syn = server.config.synthesis
    backend = server.services.voices[server.config.default_voice]  # "alloy" is an alias of it
    for speed in (1.5, 0.5):
        got = pcm16(speak(client, response_format="pcm", input=sentence, speed=speed))
        options = SynthesisOptions(syn.noise_scale, syn.length_scale / speed, syn.noise_w, sentence_seed(sentence))
        want = resample(backend.synthesize_offline(sentence, options), 22050, RATE)
        assert abs(len(got) - len(want)) <= 2
        n = min(len(got), len(want))
        assert np.max(np.abs(got[:n] - want[:n])) <= 3e-3


@pytest.mark.parametrize(
    "kw, param, code",
    [
        ({"voice": "nobody"}, "voice", "unknown_voice"),
        ({"input": ""}, "input", "empty_input"),
        ({"input": "   "}, "input", "empty_input"),
        ({"input": "x" * 4097}, "input", "string_above_max_length"),
        ({"response_format": "aac"}, "response_format", "invalid_value"),
        ({"response_format": "ogg"}, "response_format", "invalid_value"),
        ({"speed": 4.0}, "speed", "invalid_value"),
        ({"speed": 0.25}, "speed", "invalid_value"),
    ],
)
def test_bad_requests_are_400_with_openai_error(client, kw, param, code):
    with pytest.raises(openai.BadRequestError) as info:
        speak(client, **kw)
    err = info.value
    assert err.status_code == 400 and err.code == code and err.param == param
    assert err.type == "invalid_request_error" and err.message


def test_speed_out_of_the_served_range_names_it(client):
    with pytest.raises(openai.BadRequestError) as info:
        speak(client, speed=2.0)
    assert "[0.5, 1.5]" in info.value.message


def test_speed_ends_are_heard_with_durations_in_ratio(client):
    """Both ends of the served range speak the words (Whisper judge), and last about 1/speed of
    speed 1 (Piper's one-frame minimum per phoneme makes them up to 15% nearer to speed 1)."""
    from stream_server.intelligibility import WhisperJudge, word_errors

    judge = WhisperJudge(cpu_threads=1)
    sentence = "Please call me back when you have a moment this afternoon."
    seconds = {}
    for speed in (1.0, 0.5, 1.5):
        audio = pcm16(speak(client, response_format="pcm", input=sentence, speed=speed))
        seconds[speed] = len(audio) / RATE
        score = word_errors(sentence, judge.transcribe(audio, RATE))
        assert score.wer <= 0.1, (speed, score)
    for speed in (0.5, 1.5):
        assert 0.8 <= seconds[speed] / seconds[1.0] * speed <= 1.2, seconds  # measured: 0.86, 1.1


def test_malformed_bodies(server):
    url = server.http + "/v1/audio/speech"
    for body in (b"{not json", b"[1, 2]", json.dumps({"model": "tts-1", "voice": "alloy"}).encode()):
        r = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400
        assert set(r.json()["error"]) >= {"message", "type", "code"}


def test_models_and_voices(client, server):
    assert "tts-1" in [m.id for m in client.models.list()]
    voices = httpx.get(server.http + "/v1/audio/voices").json()["voices"]
    ids = {v["id"] for v in voices}
    assert {"joe_ar", "joe", "alloy", "echo", "fable", "onyx", "nova", "shimmer", "ash", "ballad", "coral",
            "sage", "verse"} <= ids


def test_mp3_streams_while_later_sentences_are_synthesized(client, reference):
    """mp3 is encoded as it is synthesized: it arrives in several pieces, and decodes to the
    same speech (mp3 encoder delay and padding aside)."""
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="mp3"
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        pieces = [p for p in response.iter_bytes(chunk_size=None) if p]
    assert len(pieces) >= 2
    audio, rate = sf.read(io.BytesIO(b"".join(pieces)), dtype="float32")
    assert rate == RATE and abs(len(audio) - len(reference)) <= 0.1 * RATE
    # loudness within 2 dB of the reference (a lossy codec, but the same speech)
    ratio = np.sqrt(np.mean(audio**2) / np.mean(reference**2))
    assert 10 ** (-2 / 20) < ratio < 10 ** (2 / 20)


def test_a_body_over_the_limit_is_413_before_it_is_read(server):
    url = server.http + "/v1/audio/speech"
    limit = server.config.openai.max_body_bytes
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": "x", "instructions": "y" * limit}).encode()
    r = httpx.post(url, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def chunked():  # no content-length: refused once the limit is passed while reading
        yield body[: limit // 2]
        yield body[limit // 2 :]

    r = httpx.post(url, content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413


async def test_a_client_leaving_a_whole_file_format_stops_its_synthesis(server):
    """flac/opus are encoded at the end: the server must notice the client leaving before then."""
    from waiting import wait_until

    services = server.services

    def cancelled() -> float:
        return services.metrics.registry.get_sample_value("tts_sentences_total", {"outcome": "cancelled"}) or 0

    before = cancelled()
    text = " ".join(f"Sentence number {i} of a long answer that nobody will wait for." for i in range(40))
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "opus"}
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v1/audio/speech", json=body, timeout=1.0)  # leaves after 1 s
    await wait_until(lambda: not services.sessions, timeout=10, what="the request's session to close")
    # its sentences were cancelled (the engine takes the cancel from its inbox, a step later)
    await wait_until(lambda: cancelled() > before, timeout=10, what="the engine to cancel its sentences")
    stats = services.engine.stats
    await wait_until(lambda: stats.waiting == 0 and sum(stats.active_slots.values()) == 0,
                     timeout=30, what="the engine to drop the rest of the text")
