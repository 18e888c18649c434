"""Run the real server (uvicorn) on a free loopback port in a background thread.

For tests and benchmarks, which need the server's own objects (engine, stats) beside a real
socket. `stream-server serve` is the way to run it for real.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from stream_server.app import create_app
from stream_server.cli import uvicorn_options
from stream_server.config import AppConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BackgroundServer:
    def __init__(self, config: AppConfig, send_buffer: int | None = None) -> None:
        """`send_buffer`: SO_SNDBUF of the server's sockets, in bytes (None: the system's, which
        grows to megabytes): small, a client that stops reading stalls the server's sends soon."""
        self.config = config
        if not config.server.port:
            config.server.port = free_port()
        self.app = create_app(config)
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", **uvicorn_options(config))
        )
        sockets = None if send_buffer is None else [self._listening_socket(send_buffer)]
        self._thread = threading.Thread(
            target=lambda: self._server.run(sockets=sockets), daemon=True, name="uvicorn"
        )

    def _listening_socket(self, send_buffer: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)  # accepted sockets inherit it
        sock.bind((self.config.server.host, self.config.server.port))
        return sock

    @property
    def url(self) -> str:
        return f"ws://{self.config.server.host}:{self.config.server.port}"

    @property
    def http(self) -> str:
        return f"http://{self.config.server.host}:{self.config.server.port}"

    @property
    def services(self):
        return self.app.state.services

    def start(self, timeout: float = 180.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not (self._server.started and self._ready()):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        services = getattr(self.app.state, "services", None)
        return bool(services and services.ready)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
