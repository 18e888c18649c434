"""The Starlette application: routes and a lifespan that owns the engine and voices."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from .config import AppConfig
from .engine.client import synthesize_once
from .server.access import AccessMiddleware, AccessPolicy, exposure_warnings
from .server.calibration import calibrate
from .server.elevenlabs_voices import elevenlabs_voice
from .server.metrics import CONTENT_TYPE_LATEST
from .server.native_ws import native_stream
from .server.protocols import ProtocolServers, protocol_routes
from .server.services import Services, build_services
from .server.voice_catalog import voice_infos

log = logging.getLogger(__name__)

def _demo_dir() -> Path:
    """web_demo/ beside the package in a source checkout, else in the working directory
    (the Docker image copies it to /app/web_demo)."""
    beside = Path(__file__).resolve().parent.parent / "web_demo"
    return beside if beside.is_dir() else Path.cwd() / "web_demo"


DEMO_DIR = _demo_dir()

WARMUP_TEXT = "Hello, the server is warming up."


def create_app(config: AppConfig, request_exit: Callable[[], None] | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for warning in exposure_warnings(config):
            log.warning(warning)
        services = build_services(config)
        services.request_exit = request_exit
        app.state.services = services
        await services.open_cache()
        if config.engine.warmup:
            t0 = time.perf_counter()
            await synthesize_once(
                services.client, config.default_voice, WARMUP_TEXT, services.default_settings().options
            )
            log.info("warm-up synthesis took %.2fs", time.perf_counter() - t0)
            if services.admission is not None and config.admission.enabled and config.admission.calibrate:
                voice = services.voices[config.default_voice]
                services.admission.cost_model = await calibrate(
                    services.client, config.default_voice, services.default_settings().options,
                    voice.max_slots, voice.sample_rate,
                )
            services.engine.stats.forget_recent()  # its one-time costs are not what load costs
        protocol_servers = await ProtocolServers().start(services)  # Wyoming's own port
        services.ready = True
        host, port = config.server.host, config.server.port
        token = "?token=<API key>" if config.auth.api_keys else ""  # the page passes it to its WebSocket
        print(f"stream_server ready: demo at http://{host}:{port}/{token}", flush=True)
        try:
            yield
        finally:
            await protocol_servers.stop()
            for session in list(services.sessions.values()):
                await session.close()
            await services.close_cache()
            services.close()

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/v1/voices", list_voices),
        WebSocketRoute("/v1/tts/stream", native_stream),
        *protocol_routes(config),  # OpenAI, ElevenLabs (docs/)
        # the demo page's scripts (index.html loads web/app.js and its AudioWorklet)
        Mount("/web", StaticFiles(directory=DEMO_DIR, check_dir=False), name="web"),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware(config))


def middleware(config: AppConfig) -> list[Middleware]:
    """CORS outside (it answers preflights, which carry no key), then keys and origins."""
    stack = []
    if config.cors.allow_origins:
        stack.append(Middleware(
            CORSMiddleware,
            allow_origins=config.cors.allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "xi-api-key"],
            max_age=600,
        ))
    stack.append(Middleware(AccessMiddleware, policy=AccessPolicy.from_config(config)))
    return stack


async def index(request: Request):
    page = DEMO_DIR / "index.html"
    if page.exists():
        return FileResponse(page)
    return PlainTextResponse("stream_server: connect a WebSocket to /v1/tts/stream\n")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """200 once voices are loaded and warmed up; 503 before, and while draining after SIGTERM (so
    a load balancer sends new sessions elsewhere; /healthz stays 200: the drain is not a fault)."""
    services: Services = request.app.state.services
    if services.draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    if not services.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    return Response(services.render_metrics(), media_type=CONTENT_TYPE_LATEST)


async def list_voices(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    # with each voice's ElevenLabs fields (voice_id, category, ...): its SDK's voices.get_all() reads this
    return JSONResponse({"voices": [elevenlabs_voice(info) | info.as_json() for info in voice_infos(services)]})
