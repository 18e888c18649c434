"""Who may use the server: API keys and browser origins, checked once for every HTTP request and
WebSocket handshake by one pure ASGI layer (README, "Exposing the server").

- Keys (`auth.api_keys`; none: nothing is asked) are accepted as `Authorization: Bearer <k>`
  (OpenAI clients), `Authorization: Token <k>` (Deepgram), `xi-api-key: <k>` (ElevenLabs) or
  `?token=<k>` (browsers cannot set WebSocket headers). `/healthz`, `/readyz` and the demo page's
  files are open; `/metrics` needs a key when `auth.protect_metrics`; everything else needs one.
- A browser request (it has an `Origin`) from a page of another origin is refused with 403 unless
  the origin is listed in `server.allowed_origins` or `cors.allow_origins`, so that no web page the
  user visits can drive a local server. On a loopback bind the server's "own" origin must be a
  loopback name too: a DNS-rebinding page has the same origin as the Host it sends. Requests a page
  makes without an Origin (an <img>/<audio> source, a navigation: `GET /control?command=exit`)
  are known by `Sec-Fetch-Site: cross-site` or `same-site`, which browsers send to loopback and
  HTTPS servers; they reach only the public paths.
- On a loopback bind the Host a request names must be a loopback name or address (with or
  without a port): a page that rebound its own DNS name to 127.0.0.1 sends that name as Host, and
  its same-origin requests carry no Origin at all. Hosts of the allowed origins pass too (a reverse
  proxy on the same machine that keeps the site's name); "*" lets any Host through.
- `?token=` is taken out of the query before anything else, so no refusal leaves it in a log.

Each refusal speaks the protocol's own error shape (refusals.py).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote_plus

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import AppConfig
from .events import shown
from .refusals import Refusal, refuse

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
TOKEN_PARAM = "token"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost (a name or an address as in a URL or a Host header)."""
    name = host.strip().lower().strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _digest(key: str) -> bytes:
    # Digests of equal length: compare_digest then leaks not even the length of a key.
    return hashlib.sha256(key.encode()).digest()


def _split_host(netloc: str, scheme: str) -> tuple[str, str]:
    """("host", "port") of a Host header or an origin's authority; the scheme's default port
    when none is given."""
    default = "443" if scheme in ("https", "wss") else "80"
    if netloc.startswith("["):  # [::1]:8000
        host, _, rest = netloc.partition("]")
        return host + "]", rest.lstrip(":") or default
    host, _, port = netloc.partition(":")
    return host, port or default


@dataclass(frozen=True)
class AccessPolicy:
    key_digests: tuple[bytes, ...] = field(repr=False)
    protect_metrics: bool
    allowed_origins: frozenset[str]  # besides the server's own; "*": any
    loopback: bool  # the server binds a loopback address

    @classmethod
    def from_config(cls, config: AppConfig) -> AccessPolicy:
        return cls(
            key_digests=tuple(_digest(k) for k in config.auth.api_keys),
            protect_metrics=config.auth.protect_metrics,
            allowed_origins=frozenset(config.server.allowed_origins) | frozenset(config.cors.allow_origins),
            loopback=is_loopback(config.server.host),
        )

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request may name this Host: on a loopback bind only a loopback name or
        address, or the host of an allowed origin; anything on other binds (and without a Host:
        not a browser)."""
        if not self.loopback or host is None or "*" in self.allowed_origins:
            return True
        name = _split_host(host.strip().lower(), "http")[0]
        if is_loopback(name):
            return True
        return any(_split_host(o.partition("://")[2], "http")[0] == name for o in self.allowed_origins)

    @staticmethod
    def is_public(path: str) -> bool:
        """Health checks, and the demo page and its scripts (its WebSocket and /v1/voices are not)."""
        return path in OPEN_PATHS or path == "/" or path == "/web" or path.startswith("/web/")

    def needs_key(self, path: str) -> bool:
        if not self.key_digests or self.is_public(path):
            return False
        return self.protect_metrics if path == "/metrics" else True

    def key_valid(self, candidates: list[str]) -> bool:
        """Whether any candidate is a key; constant time in the keys and their contents."""
        ok = False
        for candidate in candidates:
            digest = _digest(candidate)
            for key in self.key_digests:
                ok |= hmac.compare_digest(digest, key)  # no early exit
        return ok

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.strip().lower()
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        scheme, sep, netloc = origin.partition("://")
        if not (sep and scheme in ("http", "https") and host):
            return False  # "null" (sandboxed frames, files) or a request without Host
        origin_host, origin_port = _split_host(netloc, scheme)
        if (origin_host, origin_port) != _split_host(host.strip().lower(), scheme):
            return False
        return not self.loopback or is_loopback(origin_host)


def _is_token(part: bytes) -> bool:
    return unquote_plus(part.split(b"=", 1)[0].decode("latin-1")) == TOKEN_PARAM


def presented_keys(headers: Headers, query: list[tuple[str, str]]) -> list[str]:
    """Every credential the client sent, in any of the accepted forms."""
    keys = []
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        keys.append(value.strip())
    keys += [v for v in headers.getlist("xi-api-key") if v]
    keys += [v for k, v in query if k == TOKEN_PARAM and v]
    return keys


class AccessMiddleware:
    """The ASGI layer: checks the origin, then the key, before any route runs."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        if refusal is not None:
            await refuse(scope, receive, send, refusal)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> Refusal | None:
        headers = Headers(scope=scope)
        raw_query = scope.get("query_string", b"")
        query = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)
        keys = presented_keys(headers, query)
        if any(k == TOKEN_PARAM for k, _ in query):
            # Drop the key from the query in place, before any refusal: uvicorn's access log and the
            # routes read this same scope, and a key must not end up in a log. The rest stays byte
            # for byte.
            scope["query_string"] = b"&".join(p for p in raw_query.split(b"&") if not _is_token(p))
        host = headers.get("host")
        if not self.policy.host_allowed(host):
            return Refusal(
                403, "host_not_allowed",
                f"Host {shown(host)} is not a loopback name: this server listens on loopback only, and a "
                "page that points its own name at this machine (DNS rebinding) sends that name; use "
                "127.0.0.1 or localhost, or list the site's origin in server.allowed_origins",
            )
        origin = headers.get("origin")
        if origin is not None and not self.policy.origin_allowed(origin, headers.get("host")):
            return Refusal(
                403, "origin_not_allowed",
                f"origin {shown(origin)} is not allowed; list it in server.allowed_origins (or cors.allow_origins)",
            )
        site = headers.get("sec-fetch-site")
        if (origin is None and site in ("cross-site", "same-site") and "*" not in self.policy.allowed_origins
                and not self.policy.is_public(scope["path"])):
            return Refusal(
                403, "origin_not_allowed",
                f"a request from another site's page (Sec-Fetch-Site: {shown(site)}) without an Origin; "
                "pages of allowed origins must send CORS requests",
            )
        if not self.policy.needs_key(scope["path"]) or self.policy.key_valid(keys):
            return None
        if keys:
            return Refusal(401, "invalid_api_key", "invalid API key")
        return Refusal(
            401, "missing_api_key",
            "an API key is required: send Authorization: Bearer <key>, xi-api-key: <key> or ?token=<key>",
        )


def exposure_warnings(config: AppConfig) -> list[str]:
    """What to warn about at start: listening beyond loopback without keys, and Wyoming's port,
    which has no authentication at all (the protocol has none)."""
    warnings = []
    s, w = config.server, config.wyoming
    if not config.auth.api_keys and not is_loopback(s.host):
        warnings.append(
            f"server.host is {s.host}, not a loopback address, and no API keys are set: anyone who can "
            f"reach port {s.port} can use this server. Set STREAM_SERVER_API_KEYS (or auth.api_keys) "
            "before exposing it (README, 'Exposing the server')"
        )
    if w.enabled and not is_loopback(w.host):
        warnings.append(
            f"the Wyoming port {w.host}:{w.port} has no authentication (API keys do not cover it): keep it "
            "on a trusted network, or turn it off (--no-wyoming, wyoming.enabled: false)"
        )
    return warnings
