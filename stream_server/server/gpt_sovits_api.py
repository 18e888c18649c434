"""GPT-SoVITS api_v2's HTTP interface, a thin adapter onto Session (docs/gpt_sovits.md).

`GET`/`POST /tts` take api_v2's parameters (same names, defaults and error bodies: HTTP 400 with
`{"message": ...}`, FastAPI's 422 for a value of the wrong type: gpt_sovits_request.py); the text
is split by its `text_split_method` and each piece is spoken by the same sessions, engine and cache
as every other protocol, so many requests are served at once (api_v2 serves one at a time).
`streaming_mode` 1 streams each piece whole, 2 and 3 each chunk as the engine makes it (api_v2's
modes 2/3 re-decode and cross-fade); 0 answers once the whole text is spoken. With a fixed `seed`,
modes 0 and 1 draw from one generator in upstream's order (models/gpt_sovits/shared_rng.py). Audio (peaks scaled,
packing: gpt_sovits_audio.py): 32 kHz mono, `fragment_interval` seconds of silence after each piece.

`/set_refer_audio`, `/set_gpt_weights`, `/set_sovits_weights` change the voice for the requests
that follow (new weights are loaded off the event loop and put in place once the voice's sentences
in flight are done); `/control?command=exit` shuts the server down gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from dataclasses import replace
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine.backend import VoiceControl
from ..engine.requests import SynthesisOptions
from .admission import retry_after_headers, try_again_later
from .compat import EventQueue, at_speed, open_for_request
from .events import SessionError, cut, shown
from .gpt_sovits_audio import pack, packed_stream, reordered_answer, unit_pcm
from .gpt_sovits_request import Refused, TtsRequest, Unprocessable, check, parse
from .send_stall import GuardedStreamingResponse
from .services import Services
from .session import Session
from .session_settings import SessionSettings
from .wire import BodyTooLarge, BodyTooSlow

log = logging.getLogger(__name__)

SILENCE_RATE = 16000  # upstream's answer to text with nothing to say: 1 s at 16 kHz
MAX_EXCEPTION_CHARS = 300  # an error's `Exception` text (a loader's message names the client's path)


def _voice(services: Services) -> tuple[str, VoiceControl]:
    """The voice api_v2 speaks, and its control (the routes exist only with such a voice)."""
    voice = services.gpt_sovits_voice
    control = services.voices[voice].control if voice is not None else None
    if voice is None or control is None:
        raise RuntimeError("api_v2 needs a gpt_sovits voice (protocols.py adds its routes only then)")
    return voice, control


async def tts(request: Request) -> Response:
    services: Services = request.app.state.services
    voice, control = _voice(services)
    try:
        req, mode, ref_id = await _prepare(request, services, control)
        assert req.text and req.text_lang  # checked
        pieces = await asyncio.to_thread(control.split, req.text, req.text_split_method, req.text_lang.lower())
        order = await _run_order(control, req, mode, pieces)
    except Exception as exc:  # noqa: BLE001 - _refusal answers the request's faults and re-raises the rest
        return _refusal(services, exc)
    if not pieces:  # only symbols: upstream answers 1 s of 16 kHz silence, or streams nothing
        return await _silence(req.media_type) if not mode else Response(b"", media_type=f"audio/{req.media_type}")
    events = EventQueue()
    try:
        session, stack = await _open_session(services, req, [pieces[i] for i in order], ref_id, events, mode)
    except SessionError as exc:  # the server's state (503, with Retry-After when known), else the request's fault
        status = 503 if try_again_later(exc) else 400
        body = {"message": "tts failed", "Exception": exc.message}
        return JSONResponse(body, status_code=status, headers=retry_after_headers(exc))
    rate = services.voice_rates[voice]
    gap = bytes(2 * int(rate * req.fragment_interval))  # s16le silence
    media = f"audio/{req.media_type}"
    if mode:
        pcm = unit_pcm(events, stack, gap, whole_pieces=mode == 1)
        return GuardedStreamingResponse(packed_stream(pcm, rate, req.media_type), session.guard, media)
    try:
        audio = await reordered_answer(events, stack, gap, order)
    except RuntimeError as exc:
        return JSONResponse({"message": "tts failed", "Exception": str(exc)}, status_code=400)
    return await _whole(audio, rate, req.media_type)


async def _run_order(control: VoiceControl, req: TtsRequest, mode: int, pieces: list[str]) -> list[int]:
    """The order upstream speaks the pieces in, which a fixed seed's draws follow: answering at once
    with split_bucket at speed 1, by the length of their normalised text (a stable sort); else the
    text's. The answer is put back in the text's order (reordered_answer)."""
    order = list(range(len(pieces)))
    if req.seed == -1 or mode or not req.split_bucket or req.speed_factor != 1.0 or len(pieces) < 2:
        return order
    assert req.text_lang  # checked
    lengths = await asyncio.to_thread(control.normalized_lengths, pieces, req.text_lang.lower())
    return sorted(order, key=lengths.__getitem__)


async def _prepare(request: Request, services: Services, control: VoiceControl) -> tuple[TtsRequest, int, str]:
    """The request, its streaming mode, and its reference's id (made ready off the event loop)."""
    req = await parse(request, services.config.gpt_sovits_api.max_body_bytes,
                      services.config.server.request_timeout_seconds)
    mode = check(req, control)
    assert req.ref_audio_path and req.prompt_lang  # checked
    ref_id = await asyncio.to_thread(control.prepare_reference, req.ref_audio_path, req.prompt_text,
                                     req.prompt_lang.lower(), req.aux_ref_audio_paths or ())
    return req, mode, ref_id


def _refusal(services: Services, exc: Exception) -> JSONResponse:
    """The answer to a request refused before any audio (as api_v2 and FastAPI answer it)."""
    if isinstance(exc, Refused):
        services.note_error("gpt_sovits", "-", "invalid_request", exc.body["message"])
        return JSONResponse(exc.body, status_code=400)
    if isinstance(exc, Unprocessable):  # as FastAPI answers before api_v2 sees the request
        services.note_error("gpt_sovits", "-", "invalid_request", str(exc))
        return JSONResponse(exc.body, status_code=422)
    if isinstance(exc, BodyTooLarge):
        message = f"the request body exceeds {services.config.gpt_sovits_api.max_body_bytes} bytes " \
                  "(gpt_sovits_api.max_body_bytes)"
        services.note_error("gpt_sovits", "-", "request_too_large", message)
        return JSONResponse({"message": message}, status_code=413)
    if isinstance(exc, BodyTooSlow):
        message = "the request body did not arrive in time (server.request_timeout_seconds)"
        services.note_error("gpt_sovits", "-", "request_timeout", message)
        return JSONResponse({"message": message}, status_code=408, headers={"Connection": "close"})
    if isinstance(exc, ValueError):  # the reference clip (not usable audio, too short or long); no text left
        message = cut(str(exc), MAX_EXCEPTION_CHARS)
        services.note_error("gpt_sovits", "-", "bad_request", message)
        return JSONResponse({"message": "tts failed", "Exception": message}, status_code=400)
    raise exc


async def _silence(media_type: str) -> Response:
    """Upstream's answer to text with nothing to say: one second of silence at 16 kHz."""
    return await _whole(bytes(2 * SILENCE_RATE), SILENCE_RATE, media_type)


async def _whole(audio: bytes, rate: int, media_type: str) -> Response:
    """s16le audio as one file of `media_type` (encoded off the event loop)."""
    return Response(await asyncio.to_thread(pack, audio, rate, media_type), media_type=f"audio/{media_type}")


async def _open_session(
    services: Services, req: TtsRequest, pieces: list[str], ref_id: str, events: EventQueue, mode: int
) -> tuple[Session, contextlib.AsyncExitStack]:
    voice, control = _voice(services)
    assert req.text_lang  # checked
    text_lang = req.text_lang.lower()
    # api_v2's speed_factor is absolute: 1 / speed_factor, whatever synthesis.length_scale says
    sampling = SynthesisOptions(
        length_scale=1.0, temperature=req.temperature, top_k=req.top_k, top_p=req.top_p,
        repetition_penalty=req.repetition_penalty, extra=control.request_options(ref_id, text_lang),
    )
    seed = random.getrandbits(63) if req.seed == -1 else req.seed  # -1: a new voice take each time
    options = at_speed(sampling, req.speed_factor)
    if req.seed != -1 and mode in (0, 1):  # pieces whole: upstream's one generator, in its order (shared_rng.py)
        options = replace(options, shared_rng=(uuid.uuid4().hex, req.seed))
    settings = SessionSettings(voice, services.voice_rates[voice], "pcm_f32le", options, seed_base=seed)

    async def feed(session: Session) -> None:
        for piece in pieces:
            await session.sentence(piece)  # each piece of the split is spoken whole, as in api_v2

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
