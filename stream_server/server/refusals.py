"""How a request refused by the access layer (access.py) is answered: in each protocol's own
error shape, as its clients expect.

| route | missing or wrong key (401) / foreign origin or Host (403) |
|---|---|
| OpenAI and other HTTP (`/v1/...`, `/metrics`) | OpenAI's `{"error": {"message", "type", "param", "code"}}` |
| GPT-SoVITS api_v2 (`/tts`, `/set_*`, `/control`) | api_v2's `{"message": ...}` |
| Deepgram WS `/v1/speak` | HTTP at the handshake, `{"err_code", "err_msg"}` and a `dg-error` header, as Deepgram |
| ElevenLabs WS `.../stream-input`, `.../multi-stream-input` | HTTP at the handshake, ElevenLabs' `{"detail": {"status", "message"}}` |
| ElevenLabs HTTP `/v1/text-to-speech/...`, `/v2/voices`, `/v1/voices/{id}` | ElevenLabs' `{"detail": {"status", "message"}}` |
| native WS `/v1/tts/stream` | 401: accepted, `{"type": "error"}` message, close 4401 with the reason; 403: HTTP at the handshake |

The SDKs and frameworks that speak Deepgram and ElevenLabs run outside browsers and report a
refused handshake with its status ("server rejected WebSocket connection: HTTP 401"), which is what
Deepgram's own service sends. The native protocol's clients include browsers (the demo page), which
never see a refused handshake's status, only close code 1006: so its sockets are accepted and
closed with 4401 (401 in the 4000-4999 application range) and a reason a page can show. A foreign
origin or Host gets a plain 403 everywhere: the page that sent it is not owed an explanation.
"""  # noqa: E501  (the table's rows)

from __future__ import annotations

import json
import logging
from typing import Any, NamedTuple

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from .compat import close_reason
from .events import Error, shown
from .native_messages import serialise_event

log = logging.getLogger(__name__)

API_V2_PATHS = frozenset({"/tts", "/set_refer_audio", "/set_gpt_weights", "/set_sovits_weights", "/control"})
NATIVE_WS = "/v1/tts/stream"
ELEVENLABS_PATHS = ("/v1/text-to-speech/", "/v2/voices", "/v1/voices/")  # not /v1/voices: the native list
CLOSE_UNAUTHORIZED = 4401


class Refusal(NamedTuple):
    status: int  # 401 or 403
    code: str  # missing_api_key, invalid_api_key, origin_not_allowed, host_not_allowed
    message: str


def protocol_of(path: str, websocket: bool) -> str:
    if path in API_V2_PATHS:
        return "gpt_sovits_api"
    if path.startswith(ELEVENLABS_PATHS):  # its WebSockets and its HTTP routes
        return "elevenlabs"
    if path == "/v1/speak":  # the WebSocket and the REST endpoint
        return "deepgram"
    if websocket:
        if path == NATIVE_WS:
            return "native"
    return "openai" if path.startswith("/v1/") else "http"


def _body(protocol: str, r: Refusal) -> dict[str, Any]:
    if protocol == "gpt_sovits_api":
        return {"message": r.message}
    if protocol == "deepgram":
        return {"err_code": "INVALID_AUTH" if r.status == 401 else "FORBIDDEN", "err_msg": r.message}
    if protocol == "elevenlabs":
        return {"detail": {"status": r.code, "message": r.message}}
    kind = "invalid_request_error" if r.status == 401 else "permission_error"
    return {"error": {"message": r.message, "type": kind, "param": None, "code": r.code}}


def _headers(protocol: str, r: Refusal) -> dict[str, str]:
    headers = {"WWW-Authenticate": 'Bearer realm="stream_server"'} if r.status == 401 else {}
    if protocol == "deepgram":
        headers["dg-error"] = r.message
    return headers


async def refuse(scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
    websocket = scope["type"] == "websocket"
    protocol = protocol_of(scope["path"], websocket)
    _note(scope, protocol, refusal)
    response = JSONResponse(_body(protocol, refusal), refusal.status, _headers(protocol, refusal))
    if not websocket:
        await response(scope, receive, send)
        return
    ws = WebSocket(scope, receive, send)
    can_answer_http = "websocket.http.response" in scope.get("extensions", {})
    if can_answer_http and not (protocol == "native" and refusal.status == 401):
        await ws.send_denial_response(response)
        return
    await _accept_and_close(ws, protocol, refusal)


async def _accept_and_close(ws: WebSocket, protocol: str, refusal: Refusal) -> None:
    """Accept, say why in the protocol's own error message, and close with 4401."""
    try:
        await ws.accept()
        if protocol == "native":
            msgpack_mode = ws.query_params.get("encoding") == "msgpack"
            frame = serialise_event(Error(refusal.code, refusal.message), msgpack_mode)
            await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_text(frame))
        else:
            await ws.send_text(json.dumps(_body(protocol, refusal)))
        reason = close_reason(refusal.code, refusal.message)
        await ws.close(CLOSE_UNAUTHORIZED if refusal.status == 401 else 1008, reason)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away first


def _note(scope: Scope, protocol: str, refusal: Refusal) -> None:
    """Count and log it like every other error sent to a client (the app's services, once started)."""
    services = getattr(getattr(scope.get("app"), "state", None), "services", None)
    message = f"{refusal.message} ({shown(scope['path'])})"
    if services is not None:
        services.note_error(protocol, "-", refusal.code, message)
    else:
        log.warning("event=error protocol=%s session_id=- code=%s message=%r", protocol, refusal.code, message)
