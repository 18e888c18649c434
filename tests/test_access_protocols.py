"""API keys and origins on the real server, protocol by protocol, with each ecosystem's own client
where the suite has one: a missing or wrong key is refused in the protocol's own shape, a right one
is accepted in every form (Authorization: Bearer / Token, xi-api-key, ?token=); /healthz stays
open, /metrics is protected, CORS preflights are answered, and a page of another origin cannot
open a WebSocket while the server's own page can (stream_server/server/access.py, refusals.py)."""

from __future__ import annotations

import json
import subprocess
import threading

import httpx
import openai
import pytest
import websockets

import gpt_sovits_assets
from conftest import CORS_ORIGIN, KEYS
from prerequisites import require_command

pytestmark = pytest.mark.slow

KEY, OTHER_KEY = KEYS
WRONG = "not-a-key"
FORMS = {  # every way a client may send a key: (headers, query)
    "bearer": lambda k: ({"Authorization": f"Bearer {k}"}, ""),
    "token": lambda k: ({"Authorization": f"Token {k}"}, ""),
    "xi-api-key": lambda k: ({"xi-api-key": k}, ""),
    "query": lambda k: ({}, f"token={k}"),
}


def join(query: str, extra: str) -> str:
    return "&".join(q for q in (query, extra) if q)


# --- HTTP --------------------------------------------------------------------------------------

def test_health_and_demo_files_are_open(keyed_server):
    for path in ("/healthz", "/readyz", "/", "/web/app.js"):
        assert httpx.get(keyed_server.http + path).status_code == 200, path


def test_metrics_need_a_key(keyed_server):
    r = httpx.get(keyed_server.http + "/metrics")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.get(keyed_server.http + "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and "tts_errors_total" in r.text
    # refusals are counted like every other error sent to a client
    assert 'tts_errors_total{code="missing_api_key"}' in r.text


@pytest.mark.parametrize("form", FORMS)
def test_any_form_of_either_key_is_accepted(keyed_server, form):
    for key in KEYS:
        headers, query = FORMS[form](key)
        r = httpx.get(f"{keyed_server.http}/v1/voices?{query}", headers=headers)
        assert r.status_code == 200 and r.json()["voices"], (form, r.text)


def test_openai_sdk_with_and_without_the_key(keyed_server):
    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=keyed_server.http + "/v1", api_key=key, max_retries=0, timeout=120)

    audio = client(KEY).audio.speech.create(model="tts-1", voice="alloy", input="Hello.", response_format="pcm")
    assert len(audio.content) > 2400  # over 50 ms of 24 kHz s16le
    with pytest.raises(openai.AuthenticationError) as refused:
        client(WRONG).audio.speech.create(model="tts-1", voice="alloy", input="Hello.", response_format="pcm")
    assert refused.value.status_code == 401
    assert refused.value.body == {"message": "invalid API key", "type": "invalid_request_error",
                                  "param": None, "code": "invalid_api_key"}
    with pytest.raises(openai.AuthenticationError):
        client(WRONG).models.list()


def test_openai_without_any_key_is_401_in_openais_shape(keyed_server):
    r = httpx.post(keyed_server.http + "/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hi."})
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["code"] == "missing_api_key" and error["type"] == "invalid_request_error"
    assert "Authorization: Bearer" in error["message"]


def test_gpt_sovits_api_v2_refuses_in_its_shape_and_accepts_each_form(keyed_server):
    params = {"text": "Hello there.", "text_lang": "en",
              "ref_audio_path": keyed_server.config.voices["gpt_sovits"].ref_audio,
              "prompt_lang": "en", "prompt_text": gpt_sovits_assets.PROMPT_TEXT, "top_k": 1, "seed": 7,
              "media_type": "raw"}
    for key, message in ((None, "an API key is required"), (WRONG, "invalid API key")):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        r = httpx.get(keyed_server.http + "/tts", params=params, headers=headers)
        assert r.status_code == 401 and set(r.json()) == {"message"} and r.json()["message"].startswith(message)
    r = httpx.get(keyed_server.http + "/control")
    assert r.status_code == 401 and "message" in r.json()  # /control?command=exit must not be open
    for form, make in FORMS.items():
        headers, query = make(KEY)
        r = httpx.post(f"{keyed_server.http}/tts?{query}", json=params, headers=headers, timeout=120)
        assert r.status_code == 200 and len(r.content) > 0, (form, r.text[:200])


# --- CORS and origins --------------------------------------------------------------------------

def test_cors_preflight_and_headers_for_the_allowed_origin(keyed_server):
    preflight = {"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    r = httpx.options(keyed_server.http + "/v1/audio/speech", headers=preflight)  # no key: browsers send none
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = httpx.get(keyed_server.http + "/v1/voices", headers={"Origin": CORS_ORIGIN, "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == CORS_ORIGIN
    # the page can read a refusal too
    r = httpx.get(keyed_server.http + "/v1/voices", headers={"Origin": CORS_ORIGIN})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == CORS_ORIGIN
    r = httpx.options(keyed_server.http + "/v1/audio/speech", headers=preflight | {"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_a_request_from_another_origin_is_refused_even_with_a_key(keyed_server):
    r = httpx.post(keyed_server.http + "/v1/audio/speech", headers={"Origin": "https://evil.example",
                   "Authorization": f"Bearer {KEY}"}, json={"model": "tts-1", "voice": "alloy", "input": "Hi."})
    assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"


async def test_websocket_from_another_origin_is_refused_same_origin_accepted(server):
    """The default server (no keys, loopback): a page of the server's own origin may open the
    socket, any other page may not, and clients without an Origin (not browsers) may."""
    url = server.url + "/v1/tts/stream"
    for origin in ("https://evil.example", "null"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, origin=origin):
                pass
        assert refused.value.response.status_code == 403, origin
    for origin in (server.http, None):
        async with websockets.connect(url, origin=origin) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"


def test_a_dns_rebinding_page_is_refused(server):
    """A page whose name was made to resolve to 127.0.0.1 sends Host and Origin of that name: the
    same origin as far as the browser knows, but not a loopback name on a loopback server. Its
    same-origin GETs send no Origin at all: the Host alone refuses them."""
    rebound = f"rebound.example:{server.config.server.port}"
    r = httpx.post(server.http + "/v1/audio/speech", headers={"Host": rebound, "Origin": f"http://{rebound}"},
                   json={"model": "tts-1", "voice": "alloy", "input": "Hi."})
    assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"
    for path in ("/v1/voices", "/v1/audio/voices"):
        r = httpx.get(server.http + path, headers={"Host": rebound, "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"


# --- WebSockets ----------------------------------------------------------------------------------

async def _refused_handshake(url: str, headers: dict) -> websockets.InvalidStatus:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=headers):
            pass
    return refused.value


@pytest.mark.parametrize("key", [None, WRONG])
async def test_native_ws_refused_with_an_error_and_4401(keyed_server, key):
    """Accepted, then an `error` message and close 4401 with the reason: browsers (the demo page)
    never see a refused handshake's status."""
    query = f"?token={key}" if key else ""
    async with websockets.connect(f"{keyed_server.url}/v1/tts/stream{query}") as ws:
        error = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await ws.recv()
    code = "invalid_api_key" if key else "missing_api_key"
    assert error["type"] == "error" and error["code"] == code
    assert closed.value.rcvd.code == 4401 and closed.value.rcvd.reason.startswith(code)


async def test_native_ws_msgpack_refusal_is_msgpack(keyed_server):
    import msgpack

    async with websockets.connect(f"{keyed_server.url}/v1/tts/stream?encoding=msgpack") as ws:
        assert msgpack.unpackb(await ws.recv())["code"] == "missing_api_key"


@pytest.mark.parametrize("form", FORMS)
async def test_native_ws_accepts_each_form(keyed_server, form):
    headers, query = FORMS[form](OTHER_KEY)
    async with websockets.connect(f"{keyed_server.url}/v1/tts/stream?{join(query, 'sample_rate=24000')}",
                                  additional_headers=headers) as ws:
        ready = json.loads(await ws.recv())
    assert ready["type"] == "ready" and ready["sample_rate"] == 24000  # the other parameters still arrive


@pytest.mark.parametrize("key", [None, WRONG])
async def test_deepgram_refused_at_the_handshake_as_deepgram_does(keyed_server, key):
    headers = {"Authorization": f"Token {key}"} if key else {}
    refused = await _refused_handshake(f"{keyed_server.url}/v1/speak?encoding=linear16", headers)
    response = refused.response
    assert response.status_code == 401
    assert json.loads(response.body)["err_code"] == "INVALID_AUTH" and response.headers["dg-error"]


@pytest.mark.parametrize("form", FORMS)
async def test_deepgram_accepts_each_form(keyed_server, form):
    headers, query = FORMS[form](KEY)
    url = f"{keyed_server.url}/v1/speak?{join(query, 'encoding=linear16&sample_rate=24000')}"
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "Metadata"
        await ws.send(json.dumps({"type": "Speak", "text": "Hi."}))
        await ws.send(json.dumps({"type": "Flush"}))
        assert isinstance(await ws.recv(), bytes)


def test_deepgram_rest_asks_the_key_as_deepgram_does(keyed_server):
    url = f"{keyed_server.http}/v1/speak?encoding=linear16&container=none"
    refused = httpx.post(url, json={"text": "Hi."})
    assert refused.status_code == 401 and refused.json()["err_code"] == "INVALID_AUTH"
    assert refused.headers["dg-error"]
    ok = httpx.post(url, json={"text": "Hi."}, headers={"Authorization": f"Token {KEYS[0]}"})
    assert ok.status_code == 200 and len(ok.content) > 1000


@pytest.mark.parametrize("path", ["stream-input", "multi-stream-input"])
@pytest.mark.parametrize("key", [None, WRONG])
async def test_elevenlabs_refused_at_the_handshake_in_its_shape(keyed_server, path, key):
    headers = {"xi-api-key": key} if key else {}
    refused = await _refused_handshake(f"{keyed_server.url}/v1/text-to-speech/joe_ar/{path}", headers)
    assert refused.response.status_code == 401
    detail = json.loads(refused.response.body)["detail"]
    assert detail["status"] == ("invalid_api_key" if key else "missing_api_key") and detail["message"]


@pytest.mark.parametrize("form", FORMS)
async def test_elevenlabs_multi_stream_accepts_each_form(keyed_server, form):
    headers, query = FORMS[form](KEY)
    url = f"{keyed_server.url}/v1/text-to-speech/joe_ar/multi-stream-input?{join(query, 'output_format=pcm_16000')}"
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(json.dumps({"text": "Hi there.", "context_id": "a", "flush": True}))
        reply = json.loads(await ws.recv())
    assert reply["audio"] and reply["contextId"] == "a"


def test_the_elevenlabs_sdk_with_and_without_the_key(keyed_server, tmp_path, monkeypatch):
    from elevenlabs.client import ElevenLabs

    from test_elevenlabs_ws import TlsProxy, through_tls  # the SDK only speaks wss://

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

    def speak(api_key: str) -> list:
        client = ElevenLabs(api_key=api_key, base_url=f"https://127.0.0.1:{proxy.port}")
        outcome: list = []

        def run() -> None:
            outcome.append(through_tls(lambda: b"".join(client.text_to_speech.convert_realtime(
                voice_id="joe_ar", text=iter(["Hello from", " the SDK."]), output_format="pcm_22050"))))

        worker = threading.Thread(target=run, daemon=True)  # the SDK's socket has no timeout
        worker.start()
        worker.join(120)
        assert outcome, "the SDK did not finish within 120 s"
        return outcome

    with TlsProxy(keyed_server.config.server.port, str(cert), str(key)) as proxy:
        [audio] = speak(KEY)
        [refused] = speak(WRONG)
    assert isinstance(audio, bytes) and len(audio) > 22050  # over 0.5 s
    assert isinstance(refused, websockets.InvalidStatus) and refused.response.status_code == 401
