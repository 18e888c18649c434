"""Graceful shutdown under uvicorn: on SIGTERM (or Ctrl-C) drain sessions before exiting.

uvicorn's own shutdown closes WebSockets at once; this server first refuses new sessions, lets
running sentences finish for up to the configured grace period and closes sockets with 1001.
A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import socket
from types import FrameType
from typing import TYPE_CHECKING, cast

import uvicorn

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .services import Services


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, grace_seconds: float) -> None:
        super().__init__(config)
        self.grace_seconds = grace_seconds
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = cast("Starlette", self.config.app)  # the app the CLI built (uvicorn types any ASGI app)
        services: Services | None = getattr(app.state, "services", None)
        loop = self._loop
        if self._draining or services is None or loop is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self._captured_signals.append(sig)
        # We are in a signal handler: hand the work to the event loop.
        loop.call_soon_threadsafe(lambda: loop.create_task(self._drain(services)))

    async def _drain(self, services: Services) -> None:
        try:
            await services.drain(self.grace_seconds)
        finally:
            self.should_exit = True
