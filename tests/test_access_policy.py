"""The access layer's rules without a server: which paths need a key, which credentials count,
which origins pass, that ?token= never reaches a route (or a log), and the start-up warnings about
an exposed server (stream_server/server/access.py)."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.datastructures import Headers

from stream_server import app as app_module
from stream_server.app import create_app
from stream_server.config import AppConfig
from stream_server.server.access import AccessMiddleware, AccessPolicy, exposure_warnings, is_loopback, presented_keys


def policy(**sections) -> AccessPolicy:
    return AccessPolicy.from_config(AppConfig.model_validate(sections))


KEYED = {"auth": {"api_keys": ["k1", "k2"]}}


def test_without_keys_nothing_needs_one():
    p = policy()
    assert not any(p.needs_key(path) for path in ("/v1/audio/speech", "/metrics", "/tts", "/v1/tts/stream"))


def test_with_keys_everything_but_health_and_the_demo_files_needs_one():
    p = policy(**KEYED)
    for path in ("/v1/audio/speech", "/v1/voices", "/v1/tts/stream", "/v1/speak", "/tts", "/control",
                 "/metrics", "/nowhere", "/webx"):
        assert p.needs_key(path), path
    for path in ("/healthz", "/readyz", "/", "/web", "/web/app.js"):
        assert not p.needs_key(path), path
    assert not policy(auth={"api_keys": ["k"], "protect_metrics": False}).needs_key("/metrics")


def test_keys_match_exactly():
    p = policy(**KEYED)
    assert p.key_valid(["k1"]) and p.key_valid(["k2"]) and p.key_valid(["wrong", "k2"])
    assert not any(p.key_valid(c) for c in ([], ["k"], ["k1 "], ["K1"], ["k1k2"], [""]))
    assert "k1" not in repr(p)  # the policy's repr shows no key material


def test_credentials_in_every_accepted_form():
    def keys(headers: dict, query=()) -> list[str]:
        return presented_keys(Headers(headers), list(query))

    assert keys({"authorization": "Bearer abc"}) == ["abc"]
    assert keys({"authorization": "bearer  abc "}) == ["abc"]  # the scheme is case-insensitive
    assert keys({"authorization": "Token abc"}) == ["abc"]
    assert keys({"authorization": "Basic YWJjOg=="}) == []  # not a scheme of ours
    assert keys({"xi-api-key": "abc"}) == ["abc"]
    assert keys({}, [("token", "abc"), ("voice", "joe")]) == ["abc"]
    assert keys({"authorization": "Bearer a", "xi-api-key": "b"}, [("token", "c")]) == ["a", "b", "c"]


@pytest.mark.parametrize(("origin", "host", "allowed"), [
    ("http://127.0.0.1:8000", "127.0.0.1:8000", True),  # the server's own page
    ("http://localhost:8000", "localhost:8000", True),
    ("http://[::1]:8000", "[::1]:8000", True),
    ("HTTP://LOCALHOST:8000", "localhost:8000", True),
    ("http://localhost", "localhost:80", True),  # default ports
    ("https://localhost", "localhost:443", True),
    ("http://localhost:8000", "127.0.0.1:8000", False),  # another origin, to the browser too
    ("http://127.0.0.1:9000", "127.0.0.1:8000", False),
    ("https://evil.example", "127.0.0.1:8000", False),
    ("http://evil.example:8000", "evil.example:8000", False),  # DNS rebinding onto loopback
    ("null", "127.0.0.1:8000", False),  # sandboxed frames, local files
    ("http://127.0.0.1:8000", None, False),
])
def test_origins_on_a_loopback_server(origin, host, allowed):
    assert policy().origin_allowed(origin, host) is allowed


def test_listed_origins_and_a_non_loopback_server():
    p = policy(server={"allowed_origins": ["https://ws.example"]}, cors={"allow_origins": ["https://app.example"]})
    assert p.origin_allowed("https://ws.example", "127.0.0.1:8000")
    assert p.origin_allowed("https://app.example", "127.0.0.1:8000")  # a CORS origin may use the server too
    assert not p.origin_allowed("https://other.example", "127.0.0.1:8000")
    assert policy(server={"allowed_origins": ["*"]}).origin_allowed("https://any.example", "x")
    exposed = policy(server={"host": "0.0.0.0"})  # reached by name: its own origin is any name
    assert exposed.origin_allowed("https://tts.example", "tts.example")
    assert not exposed.origin_allowed("https://evil.example", "tts.example")


def test_origins_in_the_config_are_checked_and_normalised():
    cfg = AppConfig.model_validate({"server": {"allowed_origins": ["HTTPS://App.Example/"]}})
    assert cfg.server.allowed_origins == ["https://app.example"]
    for bad in ("app.example", "https://app.example/path", "ftp://app.example"):
        with pytest.raises(ValueError, match="scheme://host"):
            AppConfig.model_validate({"cors": {"allow_origins": [bad]}})
    with pytest.raises(ValueError, match="api_keys"):
        AppConfig.model_validate({"auth": {"api_keys": ["ok", " "]}})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LocalHost"])
def test_loopback_names(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "tts.example", "localhost.example"])
def test_not_loopback(host):
    assert not is_loopback(host)


async def test_the_token_is_taken_out_of_the_query():
    """Routes, and uvicorn's access log (which reads the same scope), never see ?token=."""
    seen: list[bytes] = []

    async def app(scope, receive, send):
        seen.append(scope["query_string"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    layer = AccessMiddleware(app, policy(**KEYED))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=layer), base_url="http://127.0.0.1") as client:
        r = await client.get("/v1/voices?voice=jo%C3%A9+x&token=k1&format=pcm_s16le&%74oken=k2")
        refused = await client.get("/v1/voices?token=nope")
    assert r.status_code == 204 and seen == [b"voice=jo%C3%A9+x&format=pcm_s16le"]  # the rest as it was
    assert refused.status_code == 401 and len(seen) == 1


def test_warnings_about_an_exposed_server():
    assert exposure_warnings(AppConfig()) == []  # loopback, as by default
    [warning] = exposure_warnings(AppConfig.model_validate({"server": {"host": "0.0.0.0"}}))
    assert "0.0.0.0" in warning and "STREAM_SERVER_API_KEYS" in warning
    keyed = AppConfig.model_validate({"server": {"host": "0.0.0.0"}, **KEYED})
    assert exposure_warnings(keyed) == []
    [warning] = exposure_warnings(AppConfig.model_validate({"wyoming": {"host": "0.0.0.0"}, **KEYED}))
    assert "Wyoming" in warning and "no authentication" in warning and "--no-wyoming" in warning
    off = AppConfig.model_validate({"wyoming": {"host": "0.0.0.0", "enabled": False}})
    assert exposure_warnings(off) == []


async def test_the_warning_is_logged_at_start(caplog, monkeypatch):
    """First thing in the app's start-up, before the voices load."""

    class Stop(Exception):
        pass

    def build_services(config):
        raise Stop  # what comes after the warnings is not this test's business

    monkeypatch.setattr(app_module, "build_services", build_services)
    app = create_app(AppConfig.model_validate({"server": {"host": "0.0.0.0", "port": 9}}))
    with caplog.at_level(logging.WARNING, logger="stream_server.app"), pytest.raises(Stop):
        async with app.router.lifespan_context(app):
            pass
    assert any("not a loopback address" in r.getMessage() and "no API keys" in r.getMessage()
               for r in caplog.records)


async def test_requests_another_site_makes_without_an_origin():
    """<img src="http://127.0.0.1:8000/control?command=exit">, <audio src=".../tts?...">, a link:
    no Origin, but browsers say where they come from in Sec-Fetch-Site."""
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def status(layer, path: str, site: str | None) -> int:
        headers = {"Sec-Fetch-Site": site} if site else {}
        transport = httpx.ASGITransport(app=layer)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            return (await client.get(path, headers=headers)).status_code

    layer = AccessMiddleware(app, policy())
    for site in ("cross-site", "same-site"):
        assert await status(layer, "/control?command=exit", site) == 403
        assert await status(layer, "/tts?text=hi", site) == 403
        assert await status(layer, "/", site) == 204  # a link to the demo page
        assert await status(layer, "/web/app.js", site) == 204
    for site in ("same-origin", "none", None):  # the server's own page, a typed URL, not a browser
        assert await status(layer, "/control?command=exit", site) == 204
    assert await status(AccessMiddleware(app, policy(server={"allowed_origins": ["*"]})), "/tts", "cross-site") == 204


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1:8000", True), ("127.0.0.1", True), ("localhost:8000", True), ("LOCALHOST", True),
    ("[::1]:8000", True), ("[::1]", True), ("app.localhost:8000", True), (None, True),  # no Host: no browser
    ("rebind.attacker.example:8000", False), ("rebind.attacker.example", False), ("", False),
    ("192.168.1.5:8000", False), ("0.0.0.0:8000", False), ("localhost.attacker.example", False),
])
def test_hosts_on_a_loopback_server(host, allowed):
    assert policy().host_allowed(host) is allowed


def test_hosts_beyond_loopback_and_of_allowed_origins():
    assert policy(server={"host": "0.0.0.0"}).host_allowed("tts.example:8000")  # keys guard it (README)
    proxied = policy(server={"allowed_origins": ["https://tts.example"]})  # a proxy that keeps the name
    assert proxied.host_allowed("tts.example") and proxied.host_allowed("tts.example:443")
    assert not proxied.host_allowed("rebind.attacker.example")
    assert policy(server={"allowed_origins": ["*"]}).host_allowed("any.example")


async def test_a_dns_rebinding_page_is_refused_on_a_loopback_server():
    """What a rebinding page's same-origin GET sends: its own name as Host, Sec-Fetch-Site:
    same-origin, no Origin. Refused on every path with 403 and a reason; loopback names pass."""
    reached: list[str] = []

    async def app(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    layer = AccessMiddleware(app, policy())
    transport = httpx.ASGITransport(app=layer)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        for path in ("/tts?text=hi&ref_audio_path=/etc/passwd", "/v1/voices", "/set_refer_audio?refer_audio_path=/x",
                     "/control?command=exit", "/metrics"):
            rebinding = {"Host": "rebind.attacker.example:8000", "Sec-Fetch-Site": "same-origin"}
            r = await client.get(path, headers=rebinding)
            assert r.status_code == 403, path
            body = r.json()
            message = body["message"] if "message" in body else body["error"]["message"]
            assert "loopback" in message and "rebind" in message, body
            if "error" in body:
                assert body["error"]["code"] == "host_not_allowed"
        assert reached == []
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
            assert (await client.get("/control?command=exit", headers={"Host": host})).status_code == 204
    keyed = AccessMiddleware(app, policy(server={"host": "0.0.0.0"}, **KEYED))  # beyond loopback: keys decide
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=keyed), base_url="http://tts.example") as client:
        assert (await client.get("/v1/voices", headers={"Authorization": "Bearer k1"})).status_code == 204
        assert (await client.get("/v1/voices")).status_code == 401


async def test_the_token_is_taken_out_of_the_query_of_a_refused_request_too():
    """A refusal for the origin (403) or the Host comes before the key check: the key must be
    gone from the scope, which uvicorn's access log reads, all the same."""
    async def app(scope, receive, send):
        raise AssertionError("refused requests never reach the app")

    layer = AccessMiddleware(app, policy(**KEYED))
    for headers in ({"origin": "https://evil.example", "host": "127.0.0.1:8000"}, {"host": "evil.example:8000"}):
        raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        scope = {"type": "http", "method": "GET", "path": "/v1/voices", "raw_path": b"/v1/voices",
                 "query_string": b"voice=joe&token=k1", "headers": raw_headers,
                 "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000), "http_version": "1.1",
                 "root_path": "", "asgi": {"version": "3.0"}}
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message, sent=sent):
            sent.append(message)

        await layer(scope, receive, send)
        assert sent[0]["status"] == 403 and scope["query_string"] == b"voice=joe", headers
