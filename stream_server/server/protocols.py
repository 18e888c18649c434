"""The compatibility protocols, each a thin adapter onto Session, as the app wires them in:
HTTP/WebSocket routes, and servers on their own ports started and stopped in the lifespan."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Route, WebSocketRoute

from ..config import AppConfig
from .services import Services

if TYPE_CHECKING:
    from .wyoming_tts import WyomingServer

log = logging.getLogger(__name__)


def protocol_routes(config: AppConfig) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    if config.openai.enabled:
        from .openai_speech import list_audio_voices, list_models, speech

        routes += [
            Route("/v1/audio/speech", speech, methods=["POST"]),
            Route("/v1/audio/voices", list_audio_voices),
            Route("/v1/models", list_models),
        ]
    if config.gpt_sovits_api.enabled and any(v.kind == "gpt_sovits" for v in config.voices.values()):
        from .gpt_sovits_api import control, set_gpt_weights, set_refer_audio, set_sovits_weights, tts

        routes += [
            Route("/tts", tts, methods=["GET", "POST"]),
            Route("/set_refer_audio", set_refer_audio),
            Route("/set_gpt_weights", set_gpt_weights),
            Route("/set_sovits_weights", set_sovits_weights),
            Route("/control", control),
        ]
    if config.elevenlabs.enabled:
        from .elevenlabs_ws import elevenlabs_stream

        routes.append(WebSocketRoute("/v1/text-to-speech/{voice_id}/stream-input", elevenlabs_stream))
        routes += elevenlabs_http_routes()
        if config.elevenlabs.multi_stream_input:
            from .elevenlabs_multi import elevenlabs_multi_stream

            routes.append(
                WebSocketRoute("/v1/text-to-speech/{voice_id}/multi-stream-input", elevenlabs_multi_stream)
            )
    if config.deepgram.enabled:
        from .deepgram_http import speak
        from .deepgram_ws import deepgram_speak

        # one path, two routes: Starlette matches a Route to HTTP requests only, a WebSocketRoute to handshakes
        routes += [WebSocketRoute("/v1/speak", deepgram_speak), Route("/v1/speak", speak, methods=["POST"])]
    return routes


def elevenlabs_http_routes() -> list[BaseRoute]:
    """ElevenLabs' HTTP text to speech and voices (elevenlabs_http.py, elevenlabs_voices.py)."""
    from .elevenlabs_http import convert, convert_with_timestamps, stream_with_timestamps
    from .elevenlabs_voices import get_voice, search_voices

    tts = "/v1/text-to-speech/{voice_id}"
    return [
        Route(tts, convert, methods=["POST"]),
        Route(f"{tts}/stream", convert, methods=["POST"]),
        Route(f"{tts}/with-timestamps", convert_with_timestamps, methods=["POST"]),
        Route(f"{tts}/stream/with-timestamps", stream_with_timestamps, methods=["POST"]),
        Route("/v2/voices", search_voices),
        Route("/v1/voices/{voice_id}", get_voice),
    ]


class ProtocolServers:
    """Servers with their own listening sockets (Wyoming)."""

    def __init__(self) -> None:
        self._servers: list[WyomingServer] = []

    async def start(self, services: Services) -> ProtocolServers:
        cfg = services.config
        if cfg.wyoming.enabled:
            from .wyoming_tts import WyomingServer

            server = WyomingServer(services, cfg.wyoming.host, cfg.wyoming.port)
            try:
                await server.start()
            except OSError as exc:  # e.g. wyoming-piper already on 10200: HTTP still serves
                log.error(
                    "wyoming: cannot listen on %s:%d (%s); the Wyoming server is off, everything else "
                    "runs. Set wyoming.port (or --wyoming-port) to a free port, or wyoming.enabled: false",
                    cfg.wyoming.host, cfg.wyoming.port, exc.strerror or exc,
                )
            else:
                self._servers.append(server)
        return self

    async def stop(self) -> None:
        for server in reversed(self._servers):
            try:
                await server.stop()
            except Exception:  # noqa: BLE001 - shutting down anyway
                log.exception("stopping %r failed", server)
        self._servers.clear()
