"""A real `stream-server serve` process and its own redis-server, watched from outside: what the
churn and soak benchmarks measure.

The server runs as a subprocess (deploy/cluster/processes.py), so its RSS, open file descriptors
and threads (from /proc/<pid>) are its own, not the benchmark client's. Sessions, engine slots and
queued sentences come from its /metrics (the gauges the engine thread sets after every step);
Redis client connections from the Redis's INFO (the server's pool, the only other client).
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "cluster"))

from processes import RedisServer, Replica, StartError  # noqa: E402,F401

SECRET = "bench-cache-secret-0123456789abcdef"


@dataclass
class Sample:
    t: float  # seconds since the server was ready
    rss_mb: float
    fds: int
    threads: int
    sessions: float
    slots: float
    queued: float
    redis_clients: int

    def line(self) -> str:
        return (f"t={self.t / 60:5.2f} min  rss={self.rss_mb:7.1f} MB  fds={self.fds:4d}  threads={self.threads:3d}  "
                f"sessions={self.sessions:3.0f}  slots={self.slots:3.0f}  queued={self.queued:3.0f}  "
                f"redis_clients={self.redis_clients:3d}")

    def as_dict(self) -> dict:
        return asdict(self)


class ObservedServer:
    """Redis + one replica, for a benchmark run: `with ObservedServer() as srv: srv.sample()`."""

    def __init__(self, env: dict[str, str] | None = None, workdir: str | None = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="stream-server-bench-"))
        self.redis = RedisServer(self.workdir)
        self.server = Replica("server", self.workdir, env={
            "REDIS_URL": self.redis.url,
            "STREAM_SERVER_CACHE_SECRET": SECRET,
            # Leaks are measured at a steady mix of sessions; admission would refuse most of them
            # on 2 cores (bench/bench_admission.py measures admission itself).
            "STREAM_SERVER_ADMISSION__ENABLED": "false",
            **(env or {}),
        })
        self.t0 = 0.0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/v1/tts/stream"

    def __enter__(self) -> ObservedServer:
        try:
            self.redis.start()
            self.server.start().wait_ready()
        except BaseException:
            self.close()
            raise
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.server.stop()
        self.redis.stop()

    def sample(self) -> Sample:
        m = self.server.metrics()
        return Sample(
            t=time.monotonic() - self.t0,
            rss_mb=self.server.rss_mb(),
            fds=self.server.fds(),
            threads=self.server.threads(),
            sessions=m.get("tts_active_sessions"),
            slots=m.total("tts_engine_active_slots"),
            queued=m.get("tts_queued_sentences"),
            redis_clients=self.redis.clients(),
        )

    def wait_idle(self, timeout: float = 60.0) -> Sample:
        """The first sample with no session, no slot held and nothing queued (or the last one
        taken when `timeout` ran out: the caller's check then fails with its numbers)."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.sample()
            if (s.sessions, s.slots, s.queued) == (0, 0, 0) or time.monotonic() > deadline:
                return s
            time.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        from processes import tail

        return tail(self.server.log_path, lines)


def slope_per_minute(ts: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over ts (seconds), per minute; nan for fewer than two points."""
    n = len(ts)
    if n < 2:
        return math.nan
    mt, my = sum(ts) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts)
    if var == 0:
        return math.nan
    return 60 * sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var
