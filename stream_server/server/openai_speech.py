"""OpenAI-compatible `POST /v1/audio/speech`: a thin adapter onto Session (docs/openai.md).

One request = one session: the whole `input` goes in as text, then `end`; the audio of each
sentence is streamed out as soon as it is synthesized (`pcm`, `wav`, `mp3`), or, for flac and
opus, encoded once the last sentence is done (synthesis stops if the client leaves meanwhile).
The body is refused with 413 past `openai.max_body_bytes`, before it is read.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..audio.encoders import WHOLE_FORMATS, encode_whole, mp3_stream
from ..audio.formats import wav_header
from .admission import retry_after_headers, try_again_later
from .compat import (
    EventQueue,
    after,
    at_speed,
    collect_unless_gone,
    once,
    open_for_request,
    request_pcm,
    resolve_voice,
    text_feed,
)
from .events import SessionError, shown
from .send_stall import GuardedStreamingResponse
from .services import Services
from .session import Session
from .session_settings import SessionSettings
from .wire import BodyTooLarge, BodyTooSlow, loads_json, read_body

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000  # OpenAI's `pcm` is s16le mono at 24 kHz; every format here uses that rate
# `speed` divides the voice's length_scale, and Piper's durations keep every phoneme at least one
# frame long: measured on joe_ar, speed 2 is only 1.6x faster and 4 only 2x, while durations scaled
# faithfully past 2x are unintelligible (Whisper WER 0.8 at 3, 0.97 at 4). So OpenAI's 0.25-4.0 is
# refused outside what is served as asked: 0.5 (1.7x longer) to 1.5 (1.36x shorter), both heard
# without an error (docs/openai.md).
MIN_SPEED, MAX_SPEED = 0.5, 1.5
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
STREAMED = ("pcm", "wav", "mp3")  # sent as synthesized; flac and opus (WHOLE_FORMATS) at the end
MEDIA_TYPES = {
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
}


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str
    voice: str
    response_format: str = "mp3"
    speed: float = 1.0
    stream_format: Literal["audio", "sse"] = "audio"
    instructions: str | None = None  # accepted, ignored (the voice has no style control)


def error_response(
    status: int, message: str, code: str, param: str | None = None, kind: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """OpenAI's error body (the error was counted where it arose)."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def openai_error(
    services: Services, status: int, message: str, code: str, param: str | None = None,
    kind: str = "invalid_request_error",
) -> JSONResponse:
    """A request refused before it has a session: counted here."""
    services.note_error("openai", "-", code, message)
    return error_response(status, message, code, param, kind)


class _BadRequest(Exception):
    def __init__(self, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


def _parse(services: Services, raw: bytes) -> SpeechRequest:
    try:
        data = loads_json(raw or b"null")
    except ValueError:
        raise _BadRequest("the request body is not valid JSON", "invalid_json") from None
    except SessionError as exc:  # JSON, but a string in it is not valid Unicode
        raise _BadRequest(exc.message, exc.code) from None
    if not isinstance(data, dict):
        raise _BadRequest("the request body must be a JSON object", "invalid_request")
    try:
        req = SpeechRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        code = "missing_required_parameter" if first["type"] == "missing" else "invalid_value"
        raise _BadRequest(f"{param}: {first['msg']}", code, param) from None
    if not req.input.strip():
        raise _BadRequest("input must not be empty", "empty_input", "input")
    limit = services.config.openai.max_input_chars
    if len(req.input) > limit:
        raise _BadRequest(
            f"input of {len(req.input)} characters exceeds the limit of {limit}",
            "string_above_max_length", "input",
        )
    if req.response_format not in STREAMED and req.response_format not in WHOLE_FORMATS:
        supported = sorted([*STREAMED, *WHOLE_FORMATS])
        raise _BadRequest(
            f"response_format {shown(req.response_format)} is not supported; use one of {supported}",
            "invalid_value", "response_format",
        )
    if not MIN_SPEED <= req.speed <= MAX_SPEED:
        raise _BadRequest(
            f"speed {req.speed} is not served: this server speaks speed in [{MIN_SPEED}, {MAX_SPEED}] "
            f"(OpenAI's 0.25-4.0 is wider than its voices speak intelligibly)", "invalid_value", "speed"
        )
    return req


async def _open_session(
    services: Services, req: SpeechRequest, events: EventQueue
) -> tuple[Session, contextlib.AsyncExitStack]:
    """The request's session with all its text in (compat.open_for_request)."""
    options = at_speed(services.default_settings().options, req.speed)
    settings = SessionSettings(resolve_voice(services, req.voice), SAMPLE_RATE, "pcm_s16le", options)
    return await open_for_request(
        services, "openai", settings, events, text_feed(services, req.input),
        response_format=req.response_format, stream_format=req.stream_format,
    )


def _sse(kind: str, **fields: Any) -> bytes:
    return f"data: {json.dumps({'type': kind, **fields})}\n\n".encode()


async def _sse_stream(chunks: AsyncIterator[bytes], req: SpeechRequest) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield _sse("speech.audio.delta", audio=base64.b64encode(chunk).decode())
    except RuntimeError as exc:
        yield _sse("error", error={"message": str(exc), "type": "server_error", "code": "synthesis_failed"})
        return
    words = len(req.input.split())  # no tokenizer here: "tokens" are words (documented)
    usage = {"input_tokens": words, "output_tokens": 0, "total_tokens": words}
    yield _sse("speech.audio.done", usage=usage)


async def speech(request: Request) -> Response:
    services: Services = request.app.state.services
    if services.draining:
        return openai_error(
            services, 503, "the server is shutting down; try again later", "shutting_down",
            kind="server_error",
        )
    limit, seconds = services.config.openai.max_body_bytes, services.config.server.request_timeout_seconds
    try:
        req = _parse(services, await read_body(request, limit, seconds))
    except BodyTooLarge:
        return openai_error(services, 413, f"the request body exceeds {limit} bytes", "request_too_large")
    except BodyTooSlow:
        message = f"the request body did not arrive within {seconds:g} s (server.request_timeout_seconds)"
        response = openai_error(services, 408, message, "request_timeout")
        response.headers["Connection"] = "close"
        return response
    except _BadRequest as exc:
        return openai_error(services, 400, exc.message, exc.code, exc.param)
    events = EventQueue()
    try:
        session, stack = await _open_session(services, req, events)
    except SessionError as exc:
        if try_again_later(exc):  # the client may retry (OpenAI's SDKs do)
            return error_response(503, exc.message, exc.code, kind="server_error", headers=retry_after_headers(exc))
        param = "voice" if exc.code == "unknown_voice" else "input"
        return error_response(400, exc.message, exc.code, param)
    media = "text/event-stream" if req.stream_format == "sse" else MEDIA_TYPES[req.response_format]
    if req.response_format in WHOLE_FORMATS:
        try:
            pcm = await collect_unless_gone(request, request_pcm(events, stack))
        except RuntimeError as exc:
            return error_response(500, str(exc), "synthesis_failed", kind="server_error")
        if pcm is None:  # the client left: its session is closed, nothing to answer
            return Response(status_code=499)
        body = encode_whole(b"".join(pcm), req.response_format, SAMPLE_RATE)
        if req.stream_format == "audio":
            return Response(body, media_type=media)
        chunks = once(body)
    else:
        chunks = request_pcm(events, stack)
        if req.response_format == "wav":
            chunks = after(wav_header(SAMPLE_RATE), chunks)
        elif req.response_format == "mp3":
            chunks = mp3_stream(chunks, SAMPLE_RATE)
    if req.stream_format == "sse":
        chunks = _sse_stream(chunks, req)
    return GuardedStreamingResponse(chunks, session.guard, media)  # cut if the client stops reading


async def list_models(request: Request) -> JSONResponse:
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "stream_server"} for m in MODELS]
    return JSONResponse({"object": "list", "data": data})


async def list_audio_voices(request: Request) -> JSONResponse:
    """Our voices, then the aliases other protocols may use for them."""
    services: Services = request.app.state.services
    voices = [{"id": name, "name": name} for name in services.voices]
    voices += [
        {"id": alias, "name": alias, "alias_of": target}
        for alias, target in services.config.voice_aliases.items()
    ]
    return JSONResponse({"voices": voices})
