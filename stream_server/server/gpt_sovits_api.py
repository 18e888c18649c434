"""GPT-SoVITS api_v2's HTTP interface, a thin adapter onto Session (docs/gpt_sovits.md).

`GET`/`POST /tts` take api_v2's parameters (same names, defaults and error bodies: HTTP 400 with
`{"message": ...}`); the text is split by its `text_split_method` and each piece is spoken as one
sentence by the same sessions, engine and cache as every other protocol, so many requests are
served at once (api_v2 serves one at a time). `streaming_mode` 1, 2 or 3 streams each sentence's
audio chunks as the engine makes them (api_v2's modes 2/3 re-decode and cross-fade; here every
mode streams the engine's own chunks); 0 answers once the whole text is spoken. Audio: 32 kHz s16le
mono, `fragment_interval` seconds of silence after each piece, as api_v2.

`/set_refer_audio`, `/set_gpt_weights`, `/set_sovits_weights` change the voice for the requests
that follow (new weights are loaded off the event loop and put in place once the voice's sentences
in flight are done); `/control?command=exit` shuts the server down gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..audio.encoders import encode_whole
from ..audio.formats import wav_header
from ..engine.backend import VoiceControl
from ..engine.requests import SynthesisOptions
from .admission import retry_after_headers, try_again_later
from .compat import EventQueue, after, at_speed, open_for_request, request_pcm
from .events import SessionError, cut, shown
from .send_stall import GuardedStreamingResponse
from .services import Services
from .session import Session
from .session_settings import SessionSettings
from .wire import BodyTooLarge, BodyTooSlow, loads_json, read_body

log = logging.getLogger(__name__)

MAX_EXCEPTION_CHARS = 300  # an error's `Exception` text (a loader's message names the client's path)
MEDIA_TYPES = ("wav", "raw", "ogg")  # api_v2's aac needs ffmpeg: refused with a clear message


class TtsRequest(BaseModel):
    """api_v2's TTS_Request: the same fields and defaults (some accepted and unused: see docs)."""

    model_config = ConfigDict(extra="ignore")

    text: str | None = None
    text_lang: str | None = None
    ref_audio_path: str | None = None
    aux_ref_audio_paths: list[str] | None = None
    prompt_lang: str | None = None
    prompt_text: str = ""
    top_k: int = 15
    top_p: float = 1
    temperature: float = 1
    text_split_method: str = "cut5"
    batch_size: int = 1
    batch_threshold: float = 0.75
    split_bucket: bool = True
    speed_factor: float = 1.0
    fragment_interval: float = 0.3
    seed: int = -1
    media_type: str = "wav"
    streaming_mode: bool | int = False
    parallel_infer: bool = True
    repetition_penalty: float = 1.35
    sample_steps: int = 32
    super_sampling: bool = False
    overlap_length: int = 2
    min_chunk_length: int = 16


class _Refused(Exception):
    def __init__(self, message: str, **detail: str) -> None:
        super().__init__(message)
        self.body = {"message": message, **detail}


def _check(req: TtsRequest, control: VoiceControl) -> bool:
    """api_v2's check_params, in its order; returns whether to stream."""
    if not req.ref_audio_path:
        raise _Refused("ref_audio_path is required")
    if not req.text:
        raise _Refused("text is required")
    for field in ("text_lang", "prompt_lang"):
        lang = getattr(req, field)
        if not lang:
            raise _Refused(f"{field} is required")
        if lang.lower() not in control.text_languages:
            supported = ", ".join(control.text_languages)
            raise _Refused(f"{field}: {cut(lang, 64)} is not supported (supported: {supported})")
    if req.media_type not in MEDIA_TYPES:
        hint = " (aac needs ffmpeg, which this server does not use)" if req.media_type == "aac" else ""
        raise _Refused(f"media_type: {cut(req.media_type, 64)} is not supported{hint}")
    if req.text_split_method not in control.split_methods:
        raise _Refused(f"text_split_method:{cut(req.text_split_method, 64)} is not supported")
    if req.aux_ref_audio_paths:
        raise _Refused("aux_ref_audio_paths is not supported yet: give one ref_audio_path")
    if not (0.25 <= req.speed_factor <= 4.0 and 0 < req.top_p <= 1 and req.temperature > 0
            and req.repetition_penalty > 0 and 0 <= req.fragment_interval <= 5):
        raise _Refused("speed_factor, top_p, temperature, repetition_penalty or fragment_interval out of range")
    mode = req.streaming_mode
    if isinstance(mode, bool):
        return mode
    if mode not in (0, 1, 2, 3):
        raise _Refused("the value of streaming_mode must be 0, 1, 2, 3(int) or true/false(bool)")
    return mode != 0


def _read_query(request: Request) -> dict[str, Any]:
    q = request.query_params
    data: dict[str, Any] = {k: v for k, v in q.items() if k != "aux_ref_audio_paths"}
    if "aux_ref_audio_paths" in q:
        data["aux_ref_audio_paths"] = q.getlist("aux_ref_audio_paths")
    return data


async def _parse(request: Request, max_body_bytes: int, seconds: float) -> TtsRequest:
    try:
        data = _read_query(request) if request.method == "GET" else loads_json(
            await read_body(request, max_body_bytes, seconds))
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return TtsRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _Refused(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    except ValueError as exc:  # malformed JSON (and nesting too deep), or not an object
        raise _Refused(f"invalid request: {exc}") from None
    except SessionError as exc:  # JSON, but a string in it is not valid Unicode
        raise _Refused(f"invalid request: {exc.message}") from None


def _voice(services: Services) -> tuple[str, VoiceControl]:
    """The voice api_v2 speaks, and its control (the routes exist only with such a voice)."""
    voice = services.gpt_sovits_voice
    control = services.voices[voice].control if voice is not None else None
    if voice is None or control is None:
        raise RuntimeError("api_v2 needs a gpt_sovits voice (protocols.py adds its routes only then)")
    return voice, control


async def tts(request: Request) -> Response:
    services: Services = request.app.state.services
    limit = services.config.gpt_sovits_api.max_body_bytes
    voice, control = _voice(services)
    try:
        req = await _parse(request, limit, services.config.server.request_timeout_seconds)
        streaming = _check(req, control)
        assert req.ref_audio_path and req.prompt_lang  # checked
        ref_id = await asyncio.to_thread(control.prepare_reference, req.ref_audio_path, req.prompt_text,
                                         req.prompt_lang.lower())
    except _Refused as exc:
        services.note_error("gpt_sovits", "-", "invalid_request", exc.body["message"])
        return JSONResponse(exc.body, status_code=400)
    except BodyTooLarge:
        message = f"the request body exceeds {limit} bytes (gpt_sovits_api.max_body_bytes)"
        services.note_error("gpt_sovits", "-", "request_too_large", message)
        return JSONResponse({"message": message}, status_code=413)
    except BodyTooSlow:
        message = "the request body did not arrive in time (server.request_timeout_seconds)"
        services.note_error("gpt_sovits", "-", "request_timeout", message)
        return JSONResponse({"message": message}, status_code=408, headers={"Connection": "close"})
    except ValueError as exc:  # the reference clip: not a usable audio file, too short or long
        message = cut(str(exc), MAX_EXCEPTION_CHARS)
        services.note_error("gpt_sovits", "-", "bad_reference", message)
        return JSONResponse({"message": "tts failed", "Exception": message}, status_code=400)
    events = EventQueue()
    try:
        session, stack = await _open_session(services, req, ref_id, events)
    except SessionError as exc:  # the server's state (503, with Retry-After when known), else the request's fault
        status = 503 if try_again_later(exc) else 400
        body = {"message": "tts failed", "Exception": exc.message}
        return JSONResponse(body, status_code=status, headers=retry_after_headers(exc))
    rate = services.voice_rates[voice]
    pcm = request_pcm(events, stack, gap=bytes(2 * int(rate * req.fragment_interval)))  # s16le silence
    media = f"audio/{req.media_type}"
    if streaming and req.media_type != "ogg":
        stream = after(wav_header(rate), pcm) if req.media_type == "wav" else pcm
        return GuardedStreamingResponse(stream, session.guard, media)  # cut if the client stops reading
    try:
        audio = b"".join([chunk async for chunk in pcm])
    except RuntimeError as exc:
        return JSONResponse({"message": "tts failed", "Exception": str(exc)}, status_code=400)
    if req.media_type == "wav":
        return Response(wav_header(rate, len(audio)) + audio, media_type=media)
    if req.media_type == "ogg":  # one Ogg/Vorbis file, also when streaming (api_v2 sends one per chunk)
        return Response(encode_whole(audio, "ogg", rate), media_type=media)
    return Response(audio, media_type=media)


async def _open_session(
    services: Services, req: TtsRequest, ref_id: str, events: EventQueue
) -> tuple[Session, contextlib.AsyncExitStack]:
    voice, control = _voice(services)
    assert req.text and req.text_lang  # checked
    text_lang = req.text_lang.lower()
    # api_v2's speed_factor is absolute: 1 / speed_factor, whatever synthesis.length_scale says
    sampling = SynthesisOptions(
        length_scale=1.0, temperature=req.temperature, top_k=req.top_k, top_p=req.top_p,
        repetition_penalty=req.repetition_penalty, extra=control.request_options(ref_id, text_lang),
    )
    seed = random.getrandbits(63) if req.seed == -1 else req.seed  # -1: a new voice take each time
    options = at_speed(sampling, req.speed_factor)
    settings = SessionSettings(voice, services.voice_rates[voice], "pcm_s16le", options, seed_base=seed)
    text = req.text

    async def feed(session: Session) -> None:
        for piece in control.split(text, req.text_split_method, text_lang):
            await session.text(piece)
            await session.flush()  # each piece of the split is one sentence, as in api_v2

    return await open_for_request(services, "gpt_sovits", settings, events, feed)


def _ok() -> JSONResponse:
    return JSONResponse({"message": "success"})


async def set_refer_audio(request: Request) -> JSONResponse:
    """The voice's default reference for the protocols that name no clip (native, OpenAI, ...).
    Besides api_v2's `refer_audio_path`, `prompt_text` and `prompt_lang` may be given."""
    services: Services = request.app.state.services
    q = request.query_params
    path = q.get("refer_audio_path")
    if not path:
        return JSONResponse({"message": "refer_audio_path is required"}, status_code=400)
    voice, control = _voice(services)
    try:
        await asyncio.to_thread(control.set_default_reference, path, q.get("prompt_text", ""),
                                q.get("prompt_lang", "en").lower())
    except ValueError as exc:
        return JSONResponse(
            {"message": "set refer audio failed", "Exception": cut(str(exc), MAX_EXCEPTION_CHARS)}, status_code=400
        )
    services.refresh_fingerprint(voice)
    return _ok()


async def _set_weights(request: Request, part: str) -> JSONResponse:
    services: Services = request.app.state.services
    path = request.query_params.get("weights_path")
    if not path:
        return JSONResponse({"message": f"{part} weight path is required"}, status_code=400)
    voice, control = _voice(services)
    try:
        # a missing file is answered as any other that is no checkpoint: the answer tells nothing
        # of what a path holds (control.load_weights)
        use = await asyncio.to_thread(control.load_weights, part, Path(path))
        # in place once the voice's sentences in flight are done; its new sentences wait meanwhile
        await asyncio.wrap_future(services.engine.call_when_idle(voice, use))
    except ValueError as exc:
        return JSONResponse(
            {"message": f"change {part} weight failed", "Exception": cut(str(exc), MAX_EXCEPTION_CHARS)},
            status_code=400,
        )
    services.refresh_fingerprint(voice)
    log.info("event=weights voice=%s %s=%s", voice, part, shown(path, 200))
    return _ok()


async def set_gpt_weights(request: Request) -> JSONResponse:
    return await _set_weights(request, "gpt")


async def set_sovits_weights(request: Request) -> JSONResponse:
    return await _set_weights(request, "sovits")


async def control(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    command = request.query_params.get("command")
    if command is None:
        return JSONResponse({"message": "command is required"}, status_code=400)
    if command == "exit" and services.request_exit is not None:
        services.request_exit()
        return _ok()
    if command == "restart":
        return JSONResponse({"message": "restart is not supported: run the server under a supervisor "
                                        "(systemd, a Docker restart policy) and use command=exit"}, status_code=400)
    return JSONResponse({"message": f"command {shown(command)} is not available here"}, status_code=400)
