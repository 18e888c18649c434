"""The ElevenLabs-compatible stream-input WebSocket, driven with `websockets` as ElevenLabs'
documentation describes, and with the official `elevenlabs` SDK (through a TLS proxy: the SDK
always connects with wss://, see docs/elevenlabs.md)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import warnings

import numpy as np
import pytest
import websockets

from heard import decode_mp3, word_error_rate
from prerequisites import require_command
from stream_server.audio.formats import mulaw_encode, resample
from stream_server.server.alignment import even_alignment, word_char_spans

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767


def url(server, voice: str = "joe_ar", query: str = "") -> str:
    return f"{server.url}/v1/text-to-speech/{voice}/stream-input?model_id=eleven_flash_v2_5{query}"


async def converse(ws, messages: list[dict]) -> list[dict]:
    for m in messages:
        await ws.send(json.dumps(m))
    return [json.loads(frame) async for frame in ws]  # ends when the server closes


def pcm_of(messages: list[dict]) -> np.ndarray:
    audio = b"".join(base64.b64decode(m["audio"]) for m in messages if m.get("audio"))
    return np.frombuffer(audio, "<i2").astype(np.float32) / 32767


def assert_alignment_spans_each_message(messages: list[dict], rate: int = 22050) -> None:
    """Each message's characters are contiguous from its first one to the end of its audio."""
    for m in messages:
        al = m["alignment"]
        assert m["normalizedAlignment"] == al and al["chars"]
        starts, durations = al["charStartTimesMs"], al["charDurationsMs"]
        ends = [s + d for s, d in zip(starts, durations)]
        assert 0 <= starts[0] and ends[:-1] == starts[1:] and min(durations) >= 0
        assert abs(ends[-1] - 1000 * len(base64.b64decode(m["audio"])) / 2 / rate) <= 1


def on_one_clock(messages: list[dict]) -> tuple[str, list[int]]:
    """The messages' characters, and their start times from the first message's start (each
    message's times are relative to its own audio: the clock advances by its span)."""
    chars, starts, clock = "", [], 0
    for m in messages:
        al = m["alignment"]
        chars += "".join(al["chars"])
        starts += [clock + t for t in al["charStartTimesMs"]]
        clock += al["charStartTimesMs"][-1] + al["charDurationsMs"][-1]
    return chars, starts


async def test_stream_input_streams_each_chunk_with_its_alignment(server, offline):
    """A long sentence comes in several messages, each engine chunk as it is synthesized (the first
    one a fraction of the sentence); together they are the offline audio, and their alignments
    spell the text with the space between sentences."""
    sentences = ["Streaming from an LLM, token by token, this first sentence is long enough to arrive "
                 "in several pieces.", "Token by token!"]
    async with websockets.connect(url(server), max_size=None) as ws:
        got = await converse(ws, [
            {"text": " ", "voice_settings": {"stability": 0.5, "similarity_boost": 0.8},
             "generation_config": {"chunk_length_schedule": [120, 160, 250, 290]}, "xi_api_key": "x"},
            {"text": "Streaming from an LLM, token by token, this first sentence ", "try_trigger_generation": True},
            {"text": "is long enough to arrive in several pieces. Token"},
            {"text": " by token! "},
            {"text": ""},
        ])
        assert ws.close_code == 1000
    assert got[-1] == {"isFinal": True}
    audio_msgs = got[:-1]
    assert all(m["isFinal"] is None for m in audio_msgs) and len(audio_msgs) >= 4
    got_pcm, want = pcm_of(audio_msgs), np.concatenate([offline(s) for s in sentences])
    assert len(got_pcm) == len(want) and np.max(np.abs(got_pcm - want)) <= TOL
    assert len(pcm_of(audio_msgs[:1])) < len(offline(sentences[0])) / 2  # the first chunk, not the sentence
    assert_alignment_spans_each_message(audio_msgs)
    chars, _ = on_one_clock(audio_msgs)
    assert chars == " ".join(sentences)


async def test_alignment_follows_the_word_timings(server):
    """Each word's characters lie inside that word's spoken span (the native protocol's words)."""
    sentence = "Timings follow the spoken words, not the letters, across all of the chunks of a sentence."
    async with websockets.connect(f"{server.url}/v1/tts/stream", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "text", "text": sentence}))
        await ws.send(json.dumps({"type": "flush"}))
        while (msg := await ws.recv()) and (isinstance(msg, bytes) or json.loads(msg)["type"] != "words"):
            pass
        words = json.loads(msg)["words"]
    async with websockets.connect(url(server), max_size=None) as ws:
        got = await converse(ws, [{"text": " "}, {"text": sentence, "flush": True}, {"text": ""}])
    chars, starts = on_one_clock(got[:-1])
    assert chars == sentence and len(got) > 2
    ends = starts[1:] + [None]
    for (a, b), word in zip(word_char_spans(sentence), words):
        assert starts[a] >= round(1000 * word["start"]) - 1
        assert ends[b - 1] <= round(1000 * word["end"]) + 1


async def test_flush_and_formats(server, offline):
    sentence = "Flushed without an end"
    async with websockets.connect(url(server, "alloy", "&output_format=pcm_16000"), max_size=None) as ws:
        await ws.send(json.dumps({"text": " "}))
        await ws.send(json.dumps({"text": sentence, "flush": True}))
        first = json.loads(await ws.recv())  # spoken at once, before the end of input
        rest = await converse(ws, [{"text": ""}])
    assert rest[-1] == {"isFinal": True}
    pcm = pcm_of([first] + rest[:-1])
    want = resample(offline(sentence), 22050, 16000)
    assert abs(len(pcm) - len(want)) <= 1
    async with websockets.connect(url(server, query="&output_format=ulaw_8000"), max_size=None) as ws:
        got = await converse(ws, [{"text": "Telephone audio. "}, {"text": ""}])
    ulaw = b"".join(base64.b64decode(m["audio"]) for m in got[:-1])
    assert got[-1] == {"isFinal": True}
    assert abs(len(ulaw) - len(resample(offline("Telephone audio."), 22050, 8000))) <= 1


@pytest.mark.parametrize("fmt, rate", [("mp3_44100_128", 44100), ("mp3_22050_32", 22050), ("mp3_44100_32", 44100)])
async def test_mp3_streams_as_it_is_synthesized(server, offline, fmt, rate):
    """mp3 at the format's rate, a piece in each chunk's message; the last frames come with the
    flush, before the end of input."""
    sentence = "An mp3 stream, encoded as the audio arrives, one chunk at a time."
    async with websockets.connect(url(server, query=f"&output_format={fmt}"), max_size=None) as ws:
        await ws.send(json.dumps({"text": sentence, "flush": True}))
        flushed = []
        while sum(len(m["alignment"]["chars"]) for m in flushed if m["alignment"]) < len(sentence):
            flushed.append(json.loads(await ws.recv()))
        flushed.append(json.loads(await ws.recv()))  # the stream's last frames
        rest = await converse(ws, [{"text": ""}])
    assert rest == [{"isFinal": True}] and len(flushed) > 2
    audio, got_rate = decode_mp3(b"".join(base64.b64decode(m["audio"]) for m in flushed))
    want = len(offline(sentence)) * rate / 22050
    assert got_rate == rate and want <= len(audio) <= want + 3 * 1152  # LAME's delay and padding


def test_mulaw_matches_g711():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    x = np.concatenate([np.arange(-32768, 32768, 7), [0, 1, -1, 32767, -32768]]).astype("<i2").tobytes()
    assert mulaw_encode(x) == audioop.lin2ulaw(x, 2)


def test_even_alignment_covers_the_audio():
    al = even_alignment("Hi there.", 22050, 22050)
    assert al["chars"] == list("Hi there.") and sum(al["charDurationsMs"]) == 1000


@pytest.mark.parametrize(
    "voice, query, messages, code",
    [
        ("nobody", "", [], "unknown_voice"),  # answered on connect, before any message
        ("joe", "&output_format=mp3_44100_999", [], "unsupported_output_format"),
        ("joe", "", ["{not json"], "invalid_json"),
        ("joe", "", [{"texts": " "}], "invalid_message"),
        ("joe", "", [{"text": " ", "voice_settings": {"speed": 3}}], "invalid_voice_settings"),
        ("joe", "", [{"text": " "}, {"text": "x" * 2001}], "text_too_long"),
    ],
)
async def test_bad_input_is_an_error_message_then_close(server, voice, query, messages, code):
    async with websockets.connect(url(server, voice, query)) as ws:
        for m in messages:
            await ws.send(m if isinstance(m, str) else json.dumps(m))
        got = []
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            while True:
                got.append(json.loads(await ws.recv()))
        assert closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason.startswith(f"{code}: ")  # what the SDK shows
    assert len(got) == 1 and got[0]["error"] == code and got[0]["message"]


class TlsProxy:
    """TLS in front of the test server: the `elevenlabs` SDK always connects with wss://."""

    def __init__(self, target_port: int, certfile: str, keyfile: str) -> None:
        import ssl

        self.target_port = target_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certfile, keyfile)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(r, w) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        start = asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        self._server = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def through_tls(call, attempts: int = 3):
    """`call()`'s outcome (what it returned, or the exception it raised), tried again if the SDK's
    connection was lost before the server answered anything.

    The SDK runs websockets' threaded client, whose reader thread and writer share one TLS socket; on a
    loaded 2-core CI machine it can lose a fresh connection (ConnectionClosedError with no close frame
    either way) before the handshake request is even sent. That is the client's race, not the
    server's answer: a refusal or a close frame from the server is never retried.
    """
    outcome = None
    for _ in range(attempts):
        try:
            outcome = call()
        except Exception as exc:  # noqa: BLE001 - the caller looks at it
            outcome = exc
        lost = isinstance(outcome, websockets.ConnectionClosedError) and outcome.rcvd is None and outcome.sent is None
        if not lost:
            return outcome
    return outcome


@pytest.fixture
def sdk(server, tmp_path, monkeypatch):
    """`speak(voice_id, pieces, **kwargs)`: the SDK's convert_realtime through a TLS proxy to the
    server; its outcome (the audio bytes, or the exception it raised)."""
    import subprocess

    from elevenlabs.client import ElevenLabs

    require_command("openssl", "apt-get install openssl (it makes the test's TLS certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with TlsProxy(server.config.server.port, str(cert), str(key)) as proxy:
        client = ElevenLabs(api_key="unused", base_url=f"https://127.0.0.1:{proxy.port}")

        def speak(voice_id: str, pieces: list[str], **kwargs):
            result: list = []

            def run() -> None:
                result.append(through_tls(lambda: b"".join(client.text_to_speech.convert_realtime(
                    voice_id=voice_id, text=iter(pieces), model_id="eleven_flash_v2_5", **kwargs))))

            # The SDK's socket has no timeout: run it on a daemon thread so a stuck stream fails the
            # test instead of hanging the suite.
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            worker.join(180)
            assert result, "the SDK's stream did not finish within 180 s"
            return result[0]

        yield speak


def test_the_elevenlabs_sdk_through_tls(sdk, offline):
    audio = sdk("joe_ar", ["Hello from", " the SDK.", " A second", " sentence."], output_format="pcm_22050")
    assert isinstance(audio, bytes), audio
    got = np.frombuffer(audio, "<i2").astype(np.float32) / 32767
    want = np.concatenate([offline("Hello from the SDK."), offline("A second sentence.")])
    assert len(got) == len(want) and np.max(np.abs(got - want)) <= TOL


def test_the_sdk_with_its_default_mp3_speaks_the_words(sdk):
    text = "Good morning, how can I help you today? The train leaves at seven from platform four."
    audio = sdk("joe", [text[i:i + 9] for i in range(0, len(text), 9)])  # mp3_44100_128
    assert isinstance(audio, bytes), audio
    samples, rate = decode_mp3(audio)
    assert rate == 44100 and word_error_rate(text, samples, rate) <= 0.1


@pytest.mark.parametrize("voice, kwargs, code", [
    ("nobody", {}, "unknown_voice"),
    ("joe", {"output_format": "opus_48000_32"}, "unsupported_output_format"),
])
def test_a_refusal_reaches_the_sdk_as_an_api_error_that_says_why(sdk, voice, kwargs, code):
    from elevenlabs.core.api_error import ApiError

    error = sdk(voice, ["Hello."], **kwargs)
    assert isinstance(error, ApiError), error
    body = error.body if isinstance(error.body, str) else error.body["error"]  # the close reason, or the message
    assert error.status_code == 1008 and code in body
