"""Our voices in ElevenLabs' `Voice` shape (docs/elevenlabs.md, "HTTP"): `GET /v2/voices` (the
SDK's `voices.search()`, paged), `GET /v1/voices/{voice_id}` (`voices.get()`), and the fields the
native `GET /v1/voices` adds to each of its entries so that `voices.get_all()` and LiveKit's
`list_voices()` read it too (app.py). Real voices only: aliases are names for them, not voices.

Every voice is a `premade` one (the server's own); its ElevenLabs voice id is its name.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from .compat import resolve_voice
from .elevenlabs_http import Refused
from .events import shown
from .services import Services
from .voice_catalog import VoiceInfo, voice_infos

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 10, 100  # ElevenLabs' own for /v2/voices
# ElevenLabs' defaults: the voice has no such controls; `speed` is served (elevenlabs_ws.voice_speed)
DEFAULT_SETTINGS = {"stability": 0.5, "similarity_boost": 0.75, "style": 0.0, "use_speaker_boost": True, "speed": 1.0}
OUR_CATEGORIES = (None, "premade")  # a `category` filter for any other matches none of ours
OUR_VOICE_TYPES = (None, "default")  # likewise `voice_type` (personal, community, workspace, ...)


def elevenlabs_voice(info: VoiceInfo) -> dict[str, Any]:
    """A voice in ElevenLabs' `Voice` shape (labels are strings only, as its SDK types them)."""
    labels = {"kind": info.kind, "sample_rate": str(info.sample_rate)}
    if info.language:
        labels["language"] = info.language
    speakers = f", {len(info.speakers)} speakers ('{info.name}#<speaker>')" if info.speakers else ""
    return {
        "voice_id": info.name,
        "name": info.name,
        "category": "premade",
        "labels": labels,
        "description": f"{info.kind} voice, {info.language or 'language unknown'}, {info.sample_rate} Hz{speakers}",
        "preview_url": None,
        "available_for_tiers": [],
        "settings": dict(DEFAULT_SETTINGS),
        "high_quality_base_model_ids": [],
    }


def _matches(voice: dict[str, Any], search: str) -> bool:
    haystack = " ".join([voice["name"], voice["description"], *voice["labels"].values()]).lower()
    return search.lower() in haystack


def _page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise Refused(422, "invalid_page_size", f"page_size {shown(raw)} must be an integer in [1, {MAX_PAGE_SIZE}]")
    return int(raw)


def _offset(token: str | None, total: int) -> int:
    """next_page_token is the index of the page's first voice."""
    if token is None or token == "":
        return 0
    if not token.isdigit() or int(token) > total:
        raise Refused(422, "invalid_page_token", f"next_page_token {shown(token)} is not one this server gave")
    return int(token)


def searched(services: Services, request: Request) -> list[dict[str, Any]]:
    """The voices that match the query's filters (search, category, voice_type, voice_ids)."""
    query = request.query_params
    if query.get("category") not in OUR_CATEGORIES or query.get("voice_type") not in OUR_VOICE_TYPES:
        return []
    voices = [elevenlabs_voice(info) for info in voice_infos(services)]
    ids = query.getlist("voice_ids")
    if ids:
        voices = [v for v in voices if v["voice_id"] in ids]
    search = query.get("search")
    return [v for v in voices if _matches(v, search)] if search else voices


async def search_voices(request: Request) -> JSONResponse:
    """GET /v2/voices: a page of the voices that match, and where the next page starts."""
    services: Services = request.app.state.services
    try:
        voices = searched(services, request)
        size = _page_size(request.query_params.get("page_size"))
        start = _offset(request.query_params.get("next_page_token"), len(voices))
    except Refused as exc:
        services.note_error("elevenlabs", "-", exc.code, exc.message)
        return exc.response()
    end = start + size
    more = end < len(voices)
    return JSONResponse({
        "voices": voices[start:end], "has_more": more, "total_count": len(voices),
        "next_page_token": str(end) if more else None,
    })


async def get_voice(request: Request) -> JSONResponse:
    """GET /v1/voices/{voice_id}: one voice (an alias gives the voice it names)."""
    services: Services = request.app.state.services
    wanted = resolve_voice(services, request.path_params["voice_id"])
    for info in voice_infos(services):
        if info.name == wanted:
            return JSONResponse(elevenlabs_voice(info))
    message = f"voice {shown(request.path_params['voice_id'])} was not found; see GET /v2/voices"
    services.note_error("elevenlabs", "-", "voice_not_found", message)
    return Refused(404, "voice_not_found", message).response()
