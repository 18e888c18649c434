"""Deepgram-compatible REST TTS `POST /v1/speak` (Deepgram Aura's "speak" request): a thin adapter
onto Session (docs/deepgram.md, "REST").

One request = one session: the body's `text` goes in whole, then `end`. The query chooses the audio
as Deepgram's does (`model`, `encoding`, `container`, `sample_rate`, `bit_rate`, `speed`); linear16,
mulaw and mp3 stream as they are synthesized, opus and flac are written once the audio is whole.
Errors are Deepgram's REST shape, `{"err_code", "err_msg", "request_id"}`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..audio.encoders import encode_whole, mp3_stream
from ..audio.formats import SAMPLE_RATES, WAV_MULAW, WAV_PCM, wav_header
from .admission import retry_after_headers, try_again_later
from .compat import (
    EventQueue,
    after,
    collect_unless_gone,
    once,
    open_for_request,
    request_pcm,
    resolve_voice_or_default,
    text_feed,
)
from .deepgram_ws import speed_options
from .events import SessionError, shown
from .send_stall import GuardedStreamingResponse
from .services import Services
from .session_settings import SessionSettings
from .wire import BodyTooLarge, BodyTooSlow, read_body, text_body

MAX_TEXT_CHARS = 2000  # Deepgram's limit for one request
MAX_BODY_BYTES = 32 * 1024  # 2000 characters even as \uXXXX escapes, and the JSON around them


@dataclass(frozen=True)
class Encoding:
    """What one of Deepgram's encodings may be asked with; the first of each tuple is the default."""

    containers: tuple[str, ...]
    rates: tuple[int, ...]
    bit_rates: tuple[int, ...] = ()  # none: `bit_rate` is not used (ignored, as documented)
    whole: bool = False  # written once the audio is whole (its container wants it)


ENCODINGS = {
    "mp3": Encoding(("none",), (22050,), (48000, 32000)),  # Deepgram's REST default
    "linear16": Encoding(("wav", "none"), (24000, *(r for r in SAMPLE_RATES if r != 24000))),
    "mulaw": Encoding(("wav", "none"), (8000,)),
    "opus": Encoding(("ogg",), (48000,), whole=True),
    "flac": Encoding(("none",), (48000, 8000, 16000, 22050, 32000), whole=True),
}
NOT_SERVED = ("alaw", "aac")  # Deepgram's, with no encoder here
MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "flac": "audio/flac", "mulaw": "audio/basic"}


@dataclass(frozen=True)
class Output:
    encoding: str
    container: str
    sample_rate: int
    bit_rate: int | None

    @property
    def media_type(self) -> str:
        if self.container == "wav":
            return "audio/wav"
        return MEDIA_TYPES.get(self.encoding, "application/octet-stream")  # raw linear16


class DeepgramError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _choice(query: QueryParams, name: str, allowed: tuple[int, ...] | tuple[str, ...], what: str) -> str:
    """The query's value of `name` (default: the first allowed), or a 400 naming the allowed ones."""
    value = query.get(name, str(allowed[0]))
    if value.endswith(".0"):  # the SDK sends its float parameters as "24000.0"
        value = value[:-2]
    if value not in [str(a) for a in allowed]:
        code = f"unsupported_{name}"
        raise DeepgramError(400, code, f"{name} {shown(value)} is not served for {what}; use one of {list(allowed)}")
    return value


def output_of(query: QueryParams) -> Output:
    """The audio the query asks for (or DeepgramError 400)."""
    name = query.get("encoding", "mp3")
    spec = ENCODINGS.get(name)
    if spec is None:
        served = f"served: {list(ENCODINGS)}"
        why = "has no encoder here" if name in NOT_SERVED else "is not a Deepgram encoding"
        raise DeepgramError(400, "unsupported_encoding", f"encoding {shown(name)} {why}; {served}")
    what = f"encoding {name}"
    container = _choice(query, "container", spec.containers, what)
    rate = int(_choice(query, "sample_rate", spec.rates, what))
    bit_rate = int(_choice(query, "bit_rate", spec.bit_rates, what)) if spec.bit_rates else None
    return Output(name, container, rate, bit_rate)


def text_of(raw: bytes) -> str:
    """The body's `text` (or DeepgramError: 400, or 413 past Deepgram's 2000 characters)."""
    try:
        _, text = text_body(raw)
    except SessionError as exc:
        raise DeepgramError(400, "missing_text" if exc.code == "empty_text" else exc.code, exc.message) from None
    if len(text) > MAX_TEXT_CHARS:
        message = f"text of {len(text)} characters exceeds the limit of {MAX_TEXT_CHARS}"
        raise DeepgramError(413, "text_too_long", message)
    return text


def error_response(request_id: str, error: DeepgramError) -> JSONResponse:
    """Deepgram's REST error body (the error was counted where it arose)."""
    body = {"err_code": error.code, "err_msg": error.message, "request_id": request_id}
    headers = {"dg-request-id": request_id, "dg-error": error.message.encode("ascii", "replace").decode()}
    return JSONResponse(body, error.status, {**headers, **error.headers})


async def _read(request: Request, services: Services) -> tuple[str, Output, SessionSettings]:
    """The request's text, audio and session settings (or DeepgramError)."""
    if services.draining:
        raise DeepgramError(503, "shutting_down", "the server is shutting down; try again later")
    seconds = services.config.server.request_timeout_seconds
    try:
        raw = await read_body(request, MAX_BODY_BYTES, seconds)
    except BodyTooLarge:
        raise DeepgramError(413, "request_too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes") from None
    except BodyTooSlow:
        message = f"the request body did not arrive within {seconds:g} s (server.request_timeout_seconds)"
        raise DeepgramError(408, "request_timeout", message, {"Connection": "close"}) from None
    text, out = text_of(raw), output_of(request.query_params)
    try:
        options = speed_options(services, request.query_params)
    except SessionError as exc:
        raise DeepgramError(400, exc.code, exc.message) from None
    fmt = "ulaw" if out.encoding == "mulaw" else "pcm_s16le"
    voice = resolve_voice_or_default(services, request.query_params.get("model"))
    return text, out, SessionSettings(voice, out.sample_rate, fmt, options)


async def speak(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        text, out, settings = await _read(request, services)
    except DeepgramError as exc:
        services.note_error("deepgram", "-", exc.code, exc.message)
        return error_response(uuid.uuid4().hex[:16], exc)
    events = EventQueue()
    feed = text_feed(services, text)
    try:
        session, stack = await open_for_request(services, "deepgram", settings, events, feed, rest=out.encoding)
    except SessionError as exc:  # counted by the envelope
        status = 503 if try_again_later(exc) else 400
        error = DeepgramError(status, exc.code, exc.message, retry_after_headers(exc))
        return error_response(uuid.uuid4().hex[:16], error)
    try:
        chunks = await _encoded(request, out, request_pcm(events, stack))
    except RuntimeError as exc:
        return error_response(session.session_id, DeepgramError(500, "synthesis_failed", str(exc)))
    if chunks is None:  # the client left: its session is closed, nothing to answer
        return Response(status_code=499)
    response = GuardedStreamingResponse(chunks, session.guard, out.media_type)  # cut if the client stops reading
    response.headers.update({
        "dg-model-name": request.query_params.get("model") or settings.voice, "dg-model-uuid": settings.voice,
        "dg-char-count": str(len(text)), "dg-request-id": session.session_id,
    })
    return response


async def _encoded(request: Request, out: Output, pcm: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes] | None:
    """The response body in the asked encoding and container: streamed, or (opus, flac) whole once
    the audio is (None if the client left meanwhile; RuntimeError if a sentence failed)."""
    if ENCODINGS[out.encoding].whole:
        whole = await collect_unless_gone(request, pcm)
        return None if whole is None else once(encode_whole(b"".join(whole), out.encoding, out.sample_rate))
    if out.encoding == "mp3":
        return mp3_stream(pcm, out.sample_rate, (out.bit_rate or 48000) // 1000)
    if out.container == "wav":
        mulaw = out.encoding == "mulaw"
        return after(wav_header(out.sample_rate, width=1 if mulaw else 2, tag=WAV_MULAW if mulaw else WAV_PCM), pcm)
    return pcm
