"""api_v2's request, read and checked: its TTS_Request fields and defaults, its check_params in its
order (HTTP 400 with `{"message": ...}`), and what FastAPI answers before api_v2 sees a request
(HTTP 422 with `{"detail": [...]}`: a field of the wrong type, a body that is no JSON object)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request

from ..engine.backend import VoiceControl
from .events import SessionError, cut
from .wire import loads_json, read_body

MEDIA_TYPES = ("wav", "raw", "ogg", "aac")
MAX_ECHO_CHARS = 200  # a 422's `input` echoes the client's value: cut, as a body may be large
MAX_ERRORS = 20  # a 422 lists at most this many fields
MAX_AUX_REFERENCES = 8  # each is a clip read and encoded: bounded per request


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


class Refused(Exception):
    """api_v2's own refusal: HTTP 400 with `{"message": ...}`."""

    def __init__(self, message: str, **detail: str) -> None:
        super().__init__(message)
        self.body = {"message": message, **detail}


class Unprocessable(Exception):
    """FastAPI's refusal of a request it cannot validate: HTTP 422 with `{"detail": [...]}`."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__(detail[0]["msg"] if detail else "unprocessable")
        self.body = {"detail": detail}


def check(req: TtsRequest, control: VoiceControl) -> int:
    """api_v2's check_params, in its order; returns the streaming mode (0-3; true is 1)."""
    if not req.ref_audio_path:
        raise Refused("ref_audio_path is required")
    if not req.text:
        raise Refused("text is required")
    for field in ("text_lang", "prompt_lang"):
        lang = getattr(req, field)
        if not lang:
            raise Refused(f"{field} is required")
        if lang.lower() not in control.text_languages:
            supported = ", ".join(control.text_languages)
            raise Refused(f"{field}: {cut(lang, 64)} is not supported in version "
                          f"{control.version} (supported: {supported})")
    if req.media_type not in MEDIA_TYPES:
        raise Refused(f"media_type: {cut(req.media_type, 64)} is not supported")
    if req.text_split_method not in control.split_methods:
        raise Refused(f"text_split_method:{cut(req.text_split_method, 64)} is not supported")
    if len(req.aux_ref_audio_paths or ()) > MAX_AUX_REFERENCES:
        raise Refused(f"aux_ref_audio_paths: at most {MAX_AUX_REFERENCES} clips")
    if not (0.25 <= req.speed_factor <= 4.0 and 0 < req.top_p <= 1 and req.temperature > 0
            and req.repetition_penalty > 0 and 0 <= req.fragment_interval <= 5):
        raise Refused("speed_factor, top_p, temperature, repetition_penalty or fragment_interval out of range")
    mode = req.streaming_mode
    if isinstance(mode, bool):
        return int(mode)
    if mode not in (0, 1, 2, 3):
        raise Refused("the value of streaming_mode must be 0, 1, 2, 3(int) or true/false(bool)")
    return mode


def _read_query(request: Request) -> dict[str, Any]:
    q = request.query_params
    data: dict[str, Any] = {k: v for k, v in q.items() if k != "aux_ref_audio_paths"}
    if "aux_ref_audio_paths" in q:
        data["aux_ref_audio_paths"] = q.getlist("aux_ref_audio_paths")
    return data


async def parse(request: Request, max_body_bytes: int, seconds: float) -> TtsRequest:
    """GET's query or POST's JSON body as a TtsRequest; Unprocessable (422) as FastAPI refuses."""
    where = "query" if request.method == "GET" else "body"
    try:
        data = _read_query(request) if where == "query" else loads_json(
            await read_body(request, max_body_bytes, seconds))
        return TtsRequest.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(_detail(exc, where)) from None
    except json.JSONDecodeError as exc:
        raise Unprocessable([_json_invalid(exc.msg, exc.pos)]) from None
    except ValueError as exc:  # nesting too deep, bytes that are not UTF-8
        raise Unprocessable([_json_invalid(str(exc), 0)]) from None
    except SessionError as exc:  # JSON, but a string in it is not valid Unicode
        raise Unprocessable([_json_invalid(exc.message, 0)]) from None


def _json_invalid(why: str, pos: int) -> dict[str, Any]:
    return {"type": "json_invalid", "loc": ["body", pos], "msg": "JSON decode error", "input": {},
            "ctx": {"error": cut(why, MAX_ECHO_CHARS)}}


def _detail(exc: ValidationError, where: str) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI lists them (`loc` from "body" or "query"), JSON-safe and cut."""
    out = []
    for error in exc.errors(include_url=False)[:MAX_ERRORS]:
        item: dict[str, Any] = {"type": error["type"], "loc": [where, *error["loc"]], "msg": error["msg"],
                                "input": _echo(error.get("input"))}
        if "ctx" in error:
            item["ctx"] = {k: _echo(v) for k, v in error["ctx"].items()}
        out.append(item)
    return out


def _echo(value: Any) -> Any:
    """A client's value as a 422 shows it: JSON scalars as they are, anything else as short text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return cut(value, MAX_ECHO_CHARS)
    return cut(json.dumps(value, default=str), MAX_ECHO_CHARS)
