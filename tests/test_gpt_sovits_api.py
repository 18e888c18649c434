"""A GPT-SoVITS user's switch: `stream-server serve --gpt-sovits tts_infer.yaml` answers api_v2's
`/tts` (GET and POST, streamed and not, its error bodies), serves many requests at once, and every
other protocol (here the native WebSocket) speaks the same voice by name. The voice is the tiny
upstream-format fixture voice with a tiny HuBERT (tests/gpt_sovits_assets.py)."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import uuid

import av
import httpx
import numpy as np
import pytest
import soundfile as sf
import torch
import websockets

import gpt_sovits_assets
from background import BackgroundServer
from stream_server.engine.requests import SynthesisOptions
from stream_server.models.gpt_sovits.frontend import language_runs
from stream_server.server.events import SessionError
from stream_server.text.spoken_form import seed_of, spoken_form

pytestmark = pytest.mark.slow

RATE = 32000
TEXT = "Hello there. How are you today?"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return gpt_sovits_assets.build(tmp_path_factory.mktemp("gsv-api"))


@pytest.fixture(scope="module")
def gsv_server(assets):
    """Configured the way a user would start it: the CLI's --gpt-sovits flags onto a config."""
    config = gpt_sovits_assets.cli_config(assets)
    assert config.voices["gpt_sovits"].kind == "gpt_sovits"
    with BackgroundServer(config) as server:
        yield server


def params(**over) -> dict:
    p = {"text": TEXT, "text_lang": "en", "ref_audio_path": "", "prompt_lang": "en",
         "prompt_text": gpt_sovits_assets.PROMPT_TEXT, "top_k": 1, "seed": 7, "media_type": "raw"}
    p.update(over)
    return p


def expected(server, assets, text: str, seed: int, method: str = "cut5", lang: str = "en",
             **over) -> np.ndarray:
    """What api_v2 semantics promise: each piece of the split decoded whole, all of them drawing
    from one generator seeded with the request's seed (upstream's torch.manual_seed), one piece
    after another in upstream's order (split_bucket: by normalised length; the texts here are in
    that order already), each then fragment_interval (0.3 s) of silence, as s16le."""
    backend = server.services.voices["gpt_sovits"]
    ref = backend.references.prepare(assets["ref"], gpt_sovits_assets.PROMPT_TEXT, "en")
    pieces = backend.frontend.split(text, method, lang)
    assert pieces == sorted(pieces, key=lambda p: len(backend.frontend.phones(p, lang).norm_text))
    stream, out = (uuid.uuid4().hex, seed), []
    for piece in pieces:
        spoken = spoken_form(piece)
        options = SynthesisOptions(seed=seed_of(spoken) ^ seed, top_k=1, top_p=1.0, temperature=1.0,
                                   repetition_penalty=1.35, extra=(("lang", lang), ("ref", ref.ref_id)),
                                   shared_rng=stream, **over)
        out += [backend.synthesize_offline(spoken, options), np.zeros(int(0.3 * RATE), np.float32)]
    return np.concatenate(out)


def pcm16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767


def test_post_tts_answers_api_v2_requests_with_the_voices_audio(gsv_server, assets):
    body = params(ref_audio_path=str(assets["ref"]))
    r = httpx.post(gsv_server.http + "/tts", json=body, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/raw"
    got, want = pcm16(r.content), expected(gsv_server, assets, TEXT, 7)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-3 + 1 / 32767
    wav = httpx.post(gsv_server.http + "/tts", json={**body, "media_type": "wav"}, timeout=120)
    audio, rate = sf.read(io.BytesIO(wav.content), dtype="float32")
    assert rate == RATE and np.abs(audio - got).max() <= 1 / 32767  # the same take, in a WAV file
    ogg = httpx.post(gsv_server.http + "/tts", json={**body, "media_type": "ogg"}, timeout=120)
    audio, rate = sf.read(io.BytesIO(ogg.content), dtype="float32")
    assert rate == RATE and abs(len(audio) - len(got)) < RATE // 10


@pytest.mark.parametrize("method", ["cut0", "cut1"])
def test_a_piece_of_several_sentences_is_spoken_whole_as_upstream(gsv_server, assets, method):
    """cut0 keeps the text whole and cut1 cuts every four sentences: each piece is one unit of
    speech with one fragment_interval after it, never split again into sentences."""
    text = "Hello there. How are you today? The sun is out."
    pieces = gsv_server.services.voices["gpt_sovits"].frontend.split(text, method, "en")
    assert len(pieces) == 1  # three sentences in one piece
    r = httpx.post(gsv_server.http + "/tts", json=params(ref_audio_path=str(assets["ref"]), text=text,
                                                         text_split_method=method), timeout=120)
    assert r.status_code == 200
    got, want = pcm16(r.content), expected(gsv_server, assets, text, 7, method)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-3 + 1 / 32767


def test_a_reference_without_a_transcript_takes_upstreams_reference_free_path(gsv_server, assets):
    """prompt_text "": the T2S gets neither the prompt's phones nor its semantic tokens (upstream's
    no_prompt_text); the timbre still comes from the clip."""
    references = gsv_server.services.voices["gpt_sovits"].references
    free = references.prepare(assets["ref"], "", "en")
    told = references.prepare(assets["ref"], gpt_sovits_assets.PROMPT_TEXT, "en")
    assert free.prompt_tokens.numel() == 0 and free.prompt_phones == [] and free.prompt_bert.shape[1] == 0
    assert told.prompt_tokens.numel() > 0 and torch.equal(free.style, told.style)
    body = params(ref_audio_path=str(assets["ref"]), text="Hello there.")
    free_audio = httpx.post(gsv_server.http + "/tts", json={**body, "prompt_text": ""}, timeout=120)
    told_audio = httpx.post(gsv_server.http + "/tts", json=body, timeout=120)
    assert free_audio.status_code == told_audio.status_code == 200
    assert len(free_audio.content) > 0 and free_audio.content != told_audio.content


def test_the_transcript_is_phonemized_with_upstreams_final_mark(gsv_server, assets):
    backend = gsv_server.services.voices["gpt_sovits"]
    for text, lang, ended in [("Hello there, this is my voice", "en", "Hello there, this is my voice."),
                              ("Hello there, this is my voice!", "en", "Hello there, this is my voice!")]:
        ref = backend.references.prepare(assets["ref"], text, lang)
        assert ref.prompt_phones == list(backend.frontend.phones(ended, lang).phone_ids), text
    bare = backend.references.prepare(assets["ref"], "Hello there, this is my voice", "en")
    assert bare.prompt_phones != list(backend.frontend.phones("Hello there, this is my voice", "en").phone_ids)


def test_aux_references_blend_their_timbres_as_upstream(gsv_server, assets, tmp_path):
    """aux_ref_audio_paths: the SoVITS style is the mean of the reference's and each auxiliary
    clip's (a repeated clip counts again, as upstream's list does); the prompt is the reference's."""
    references = gsv_server.services.voices["gpt_sovits"].references
    wav, rate = sf.read(gpt_sovits_assets.reference_clip(tmp_path / "c.wav", seconds=5.0), dtype="float32")
    other = tmp_path / "other.wav"
    sf.write(other, wav[::-1].copy(), rate)  # another timbre's clip: the same sounds reversed
    main = references.prepare(assets["ref"], gpt_sovits_assets.PROMPT_TEXT, "en")
    own = references.prepare(other, "", "en").style
    blended = references.prepare(assets["ref"], gpt_sovits_assets.PROMPT_TEXT, "en", [str(other)])
    twice = references.prepare(assets["ref"], gpt_sovits_assets.PROMPT_TEXT, "en", [str(other), str(other)])
    assert not torch.allclose(main.style, own)
    assert torch.allclose(blended.style, (main.style + own) / 2, atol=1e-6)
    assert torch.allclose(twice.style, (main.style + 2 * own) / 3, atol=1e-6)
    assert torch.equal(blended.prompt_tokens, main.prompt_tokens) and blended.prompt_phones == main.prompt_phones
    assert len({main.ref_id, blended.ref_id, twice.ref_id}) == 3  # each its own cache key
    body = params(ref_audio_path=str(assets["ref"]), text="Hello there.")
    plain = httpx.post(gsv_server.http + "/tts", json=body, timeout=120)
    mixed = httpx.post(gsv_server.http + "/tts", json={**body, "aux_ref_audio_paths": [str(other)]}, timeout=120)
    assert plain.status_code == mixed.status_code == 200 and plain.content != mixed.content
    many = httpx.post(gsv_server.http + "/tts", json={**body, "aux_ref_audio_paths": [str(other)] * 9}, timeout=120)
    assert many.status_code == 400 and "at most 8" in many.json()["message"]
    gone = httpx.post(gsv_server.http + "/tts", json={**body, "aux_ref_audio_paths": [str(tmp_path / "no.wav")]},
                      timeout=120)
    assert gone.status_code == 400 and str(tmp_path) not in gone.text  # the one answer that tells nothing


@pytest.mark.parametrize("lang, text, module", [
    ("ja", "今日はいい天気ですね。", "japanese"),
    ("all_ja", "東京タワーへ行きました。", "japanese"),
    ("ko", "오늘 날씨가 정말 좋네요.", "korean"),
    ("yue", "佢哋今日喺度食飯。", "cantonese"),
    ("auto", "I love 寿司 and 김치 very much.", None),
])
def test_each_language_api_v2_takes_is_spoken_with_its_own_frontend(gsv_server, assets, lang, text, module):
    """The text's runs go to upstream's G2P for their language (the module's own phones), and the
    answer is that text decoded as api_v2 promises."""
    frontend = gsv_server.services.voices["gpt_sovits"].frontend
    out = frontend.phones(text, lang)
    if module is not None:
        g2p = importlib.import_module(f"stream_server.models.gpt_sovits.frontend.{module}")
        assert list(out.phones) == g2p.g2p(text, g2p.load())[0]
        assert not out.bert.any()  # only Chinese runs get BERT features, as upstream
    else:
        assert [lang for lang, _ in language_runs(text, "auto")] == ["en", "ja", "en", "ko", "en"]
    r = httpx.post(gsv_server.http + "/tts", json=params(ref_audio_path=str(assets["ref"]), text=text,
                                                         text_lang=lang), timeout=120)
    assert r.status_code == 200, r.text
    want = expected(gsv_server, assets, text, 7, lang=lang)
    assert np.abs(pcm16(r.content) - want).max() <= 1e-3 + 1 / 32767


def test_a_reference_with_a_japanese_transcript(gsv_server, assets):
    """prompt_lang ja: the transcript is phonemized as Japanese (with upstream's final 。)."""
    backend = gsv_server.services.voices["gpt_sovits"]
    transcript = "これは私の声です"
    ref = backend.references.prepare(assets["ref"], transcript, "ja")
    assert ref.prompt_phones == list(backend.frontend.phones(transcript + "。", "ja").phone_ids)
    body = params(ref_audio_path=str(assets["ref"]), text="Hello there.")
    ja = httpx.post(gsv_server.http + "/tts", json={**body, "prompt_lang": "ja", "prompt_text": transcript},
                    timeout=120)
    en = httpx.post(gsv_server.http + "/tts", json=body, timeout=120)
    assert ja.status_code == en.status_code == 200 and len(ja.content) > 0 and ja.content != en.content


def test_get_tts_streams_the_same_take(gsv_server, assets):
    query = params(ref_audio_path=str(assets["ref"]), streaming_mode="true", media_type="wav")
    with httpx.stream("GET", gsv_server.http + "/tts", params=query, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        pieces = [p for p in r.iter_bytes(chunk_size=None) if p]
    data = b"".join(pieces)
    assert len(pieces) >= 2 and data[:4] == b"RIFF"
    want = expected(gsv_server, assets, TEXT, 7)
    assert np.abs(pcm16(data[44:]) - want).max() <= 1e-3 + 1 / 32767


def test_aac_and_streamed_ogg_come_as_upstream_sends_them(gsv_server, assets):
    """aac is an ADTS stream; a streamed ogg is one Ogg file per piece and per silence, as api_v2
    packs each chunk it yields."""
    body = params(ref_audio_path=str(assets["ref"]), media_type="aac")
    r = httpx.post(gsv_server.http + "/tts", json=body, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/aac" and r.content[:2] == b"\xff\xf1"
    with av.open(io.BytesIO(r.content)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert abs(samples - len(expected(gsv_server, assets, TEXT, 7))) < RATE // 10
    with httpx.stream("POST", gsv_server.http + "/tts", json={**body, "media_type": "ogg", "streaming_mode": 1},
                      timeout=120) as r:
        data = b"".join(r.iter_bytes())
    files = data.count(b"OggS\x00\x02")  # an Ogg stream's first page
    assert files == 2 * len(gsv_server.services.voices["gpt_sovits"].frontend.split(TEXT, "cut5", "en")) >= 4
    first = data[: data.index(b"OggS\x00\x02", 1)]
    audio, rate = sf.read(io.BytesIO(first), dtype="float32")
    assert rate == RATE and len(audio) > 0


def test_seed_minus_one_is_a_new_take_each_time(gsv_server, assets):
    body = params(ref_audio_path=str(assets["ref"]), seed=-1, top_k=15, text="A random take.")
    takes = [httpx.post(gsv_server.http + "/tts", json=body, timeout=120).content for _ in range(2)]
    assert takes[0] != takes[1]


@pytest.mark.parametrize("over, message", [
    ({"ref_audio_path": ""}, "ref_audio_path is required"),
    ({"text": ""}, "text is required"),
    ({"text_lang": "fr"}, "text_lang: fr is not supported in version v2 (supported: auto, auto_yue, en, zh, ja"),
    ({"media_type": "mp3"}, "media_type: mp3 is not supported"),
    ({"text_split_method": "cut9"}, "text_split_method:cut9 is not supported"),
    ({"streaming_mode": 7}, "streaming_mode must be 0, 1, 2, 3"),
])
def test_bad_requests_get_api_v2s_400(gsv_server, assets, over, message):
    body = {**params(ref_audio_path=str(assets["ref"])), **over}
    r = httpx.post(gsv_server.http + "/tts", json=body, timeout=60)
    assert r.status_code == 400 and message in r.json()["message"]


def test_values_of_the_wrong_type_get_fastapis_422(gsv_server, assets):
    """Upstream is a FastAPI app: a field pydantic cannot read is answered 422 with `detail`."""
    body = {**params(ref_audio_path=str(assets["ref"])), "top_k": "many"}
    r = httpx.post(gsv_server.http + "/tts", json=body, timeout=60)
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "top_k"] and error["type"] == "int_parsing" and error["input"] == "many"
    query = {**params(ref_audio_path=str(assets["ref"])), "speed_factor": "fast"}
    r = httpx.get(gsv_server.http + "/tts", params=query, timeout=60)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "speed_factor"]
    r = httpx.post(gsv_server.http + "/tts", content=b"{not json", timeout=60)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = httpx.post(gsv_server.http + "/tts", json=[1, 2], timeout=60)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body"]


@pytest.mark.parametrize("streaming", [False, True])
def test_punctuation_only_text_is_answered_as_upstream(gsv_server, assets, streaming):
    """Upstream drops pieces with no word characters: with none left, its non-streamed answer is
    1 s of silence at 16 kHz, its streamed answer has no audio (never a 500)."""
    body = params(ref_audio_path=str(assets["ref"]), text="?!... ,", media_type="wav", streaming_mode=streaming)
    r = httpx.post(gsv_server.http + "/tts", json=body, timeout=60)
    assert r.status_code == 200
    if streaming:
        assert r.content == b""
    else:
        audio, rate = sf.read(io.BytesIO(r.content), dtype="int16")
        assert rate == 16000 and len(audio) == 16000 and not audio.any()


def test_text_that_splits_into_nothing_is_upstreams_400(gsv_server, assets):
    """Upstream's filter_text refuses a split with no piece at all (a 400 from api_v2's handler)."""
    r = httpx.post(gsv_server.http + "/tts", json=params(ref_audio_path=str(assets["ref"]), text="..."), timeout=60)
    assert r.status_code == 400 and r.json() == {"message": "tts failed", "Exception": "Please enter valid text."}


def test_loud_pieces_are_scaled_down_as_upstream_not_clipped(gsv_server, assets, monkeypatch):
    """Upstream divides a fragment whose peak is over 1.0 by that peak: the piece keeps its shape."""
    backend = gsv_server.services.voices["gpt_sovits"]
    vocode = backend.vocode
    calls = []
    monkeypatch.setattr(backend, "vocode", lambda *a, **k: calls.append(1) or [w * 1000 for w in vocode(*a, **k)])
    text = "Loud voice here."
    body = params(ref_audio_path=str(assets["ref"]), text=text, seed=11, fragment_interval=0)
    got = pcm16(httpx.post(gsv_server.http + "/tts", json=body, timeout=120).content)
    monkeypatch.setattr(backend, "vocode", vocode)
    want = expected(gsv_server, assets, text, 11)[: -int(0.3 * RATE)]
    peak = np.abs(want).max()
    assert calls, "not vocoded"
    assert got.shape == want.shape and np.abs(got).max() == 1.0
    assert np.abs(got - want / peak).max() <= 1e-3 / peak + 2 / 32767
    assert (np.abs(got) >= 32766 / 32767).sum() <= 2  # no run of saturated samples


def test_a_body_over_the_limit_is_a_413_and_text_past_the_backlog_a_400(gsv_server, assets):
    limit = gsv_server.config.gpt_sovits_api.max_body_bytes
    big = params(ref_audio_path=str(assets["ref"]), text="Hello. " * (limit // 7 + 1))
    r = httpx.post(gsv_server.http + "/tts", json=big, timeout=60)
    assert r.status_code == 413 and "gpt_sovits_api.max_body_bytes" in r.json()["message"]
    backlog = gsv_server.config.session.max_pending_chars
    long = params(ref_audio_path=str(assets["ref"]), text="Hello there. " * (backlog // 13 + 1))
    r = httpx.post(gsv_server.http + "/tts", json=long, timeout=60)
    assert r.status_code == 400 and "session.max_pending_chars" in r.json()["Exception"]


def test_a_bad_reference_is_a_400_with_the_reason(gsv_server, assets):
    short = assets["root"] / "too-short.wav"
    gpt_sovits_assets.reference_clip(short, seconds=2.0)
    for path, why in ((assets["root"] / "missing.wav", "cannot be used"), (short, "3-10 s long, not 2.00 s")):
        r = httpx.post(gsv_server.http + "/tts", json=params(ref_audio_path=str(path)), timeout=60)
        assert r.status_code == 400 and r.json()["message"] == "tts failed" and why in r.json()["Exception"]


def test_a_named_file_is_answered_without_telling_what_it_holds(gsv_server, assets, tmp_path):
    """Whether a path exists, is readable, or what its first bytes are: the answers to /tts,
    /set_refer_audio and /set_*_weights are the same for all of it, and a 400 (never a 500)."""
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n" * 50)
    missing = tmp_path / "missing"

    def answers(get) -> set[str]:
        out = set()
        for path in (text, missing, tmp_path):
            r = get(str(path))
            assert r.status_code == 400, (path, r.status_code, r.text)
            out.add(r.text.replace(str(path), "PATH"))
        assert "root" not in "".join(out) and "b'ro" not in "".join(out)
        return out

    http = gsv_server.http
    assert len(answers(lambda p: httpx.post(http + "/tts", json=params(ref_audio_path=p), timeout=60))) == 1
    assert len(answers(lambda p: httpx.get(http + "/set_refer_audio", params={"refer_audio_path": p}))) == 1
    for part in ("gpt", "sovits"):
        assert len(answers(lambda p, part=part: httpx.get(f"{http}/set_{part}_weights",
                                                          params={"weights_path": p}, timeout=60))) == 1


class _AtCapacity:
    """Admission that refuses every session as overloaded (the server's state, with a retry hint)."""

    def check_session(self, sessions) -> None:
        raise SessionError("overloaded", "the server is at capacity; try again in 5 s", retry_after=5.0)

    def forget(self, session) -> None:
        pass


def test_refusals_that_are_the_servers_state_are_503_as_on_openai(gsv_server, assets):
    """Shutting down and overloaded are no fault of the request: 503 (with Retry-After when there
    is a hint), the answer OpenAI's route gives to the same refusals."""
    body = params(ref_audio_path=str(assets["ref"]))
    services = gsv_server.services
    services.draining = True
    try:
        r = httpx.post(gsv_server.http + "/tts", json=body, timeout=60)
    finally:
        services.draining = False
    assert r.status_code == 503 and "shutting down" in r.json()["Exception"]
    services.admission = _AtCapacity()
    try:
        r = httpx.post(gsv_server.http + "/tts", json=body, timeout=60)
    finally:
        services.admission = None
    assert r.status_code == 503 and r.headers["retry-after"] == "5" and "capacity" in r.json()["Exception"]

async def test_requests_are_served_together_in_one_batch(gsv_server, assets):
    stats = gsv_server.services.engine.stats
    before = stats.snapshot()
    async with httpx.AsyncClient(base_url=gsv_server.http, timeout=120) as http:
        texts = [f"Request number {i} arrives with the others." for i in range(4)]
        replies = await asyncio.gather(*(
            http.post("/tts", json=params(ref_audio_path=str(assets["ref"]), text=t, seed=i))
            for i, t in enumerate(texts)
        ))
    assert all(r.status_code == 200 and len(r.content) > RATE for r in replies)
    after = stats.snapshot()
    rows, steps = after["decode_rows"] - before["decode_rows"], after["decode_steps"] - before["decode_steps"]
    assert rows / steps > 1.5  # decode steps were shared (api_v2 runs one request at a time)


async def test_the_native_websocket_speaks_the_voice_by_name(gsv_server, assets):
    url = f"{gsv_server.url}/v1/tts/stream?voice=gpt_sovits&sample_rate={RATE}&format=pcm_f32le"
    async with websockets.connect(url, max_size=None) as ws:
        ready = json.loads(await ws.recv())
        assert ready["voice"] == "gpt_sovits" and ready["sample_rate"] == RATE
        await ws.send(json.dumps({"type": "text", "text": "Spoken by name."}))
        await ws.send(json.dumps({"type": "flush"}))
        audio = bytearray()
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                audio += frame
            elif json.loads(frame)["type"] == "flushed":
                break
    backend = gsv_server.services.voices["gpt_sovits"]
    spoken = spoken_form("Spoken by name.")
    want = backend.synthesize_offline(spoken, SynthesisOptions(seed=seed_of(spoken)))  # the default reference
    got = np.frombuffer(bytes(audio), dtype="<f4")
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4


def test_new_gpt_weights_take_effect_for_later_requests(gsv_server, assets):
    body = params(ref_audio_path=str(assets["ref"]), text="Weights change.", fragment_interval=0)
    before = httpx.post(gsv_server.http + "/tts", json=body, timeout=120).content
    r = httpx.get(gsv_server.http + "/set_gpt_weights", params={"weights_path": "/nope.ckpt"}, timeout=60)
    assert r.status_code == 400 and "change gpt weight failed" in r.json()["message"]
    other = assets["root"] / "other-gpt.ckpt"
    other.write_bytes((gpt_sovits_assets.gpt_sovits_fixtures() / "t2s_tiny.ckpt").read_bytes())
    try:
        r = httpx.get(gsv_server.http + "/set_gpt_weights", params={"weights_path": str(other)}, timeout=120)
        assert r.json() == {"message": "success"}
        after = httpx.post(gsv_server.http + "/tts", json=body, timeout=300).content
        assert len(after) > len(before)  # this GPT never says EOS: it runs to max_sec
    finally:
        httpx.get(gsv_server.http + "/set_gpt_weights", params={"weights_path": str(assets["gpt"])}, timeout=120)
    assert httpx.post(gsv_server.http + "/tts", json=body, timeout=120).content == before
