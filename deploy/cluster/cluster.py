"""Two stream-server replicas, one shared Redis and one HAProxy front door, all on loopback.

    make cluster                                  # or: .venv/bin/python deploy/cluster/cluster.py
    make cluster ARGS="--port 9000 -- --config my.yaml"   # after --: passed to each `stream-server serve`

Starts a redis-server (maxmemory, allkeys-lru), two `stream-server serve` replicas on free ports
with REDIS_URL pointing at it and one cache secret (STREAM_SERVER_CACHE_SECRET from the
environment, else a random one for this run), Wyoming off, then HAProxy (haproxy.cfg beside this
file; Debian's `haproxy` package) on --port, which balances HTTP and WebSockets and checks each
replica's /readyz every second. Ctrl-C (or SIGTERM) stops the replicas first (each drains its
sessions: README, "Graceful shutdown"), then the front door and Redis.

Logs of every process are in --workdir (a temporary directory by default).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import FrontDoor, RedisServer, Replica  # noqa: E402


class Cluster:
    def __init__(self, workdir: Path, port: int | None = None, secret: str | None = None,
                 env: dict[str, str] | None = None, serve_args: list[str] | None = None,
                 redis_port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.secret = secret or os.environ.get("STREAM_SERVER_CACHE_SECRET") or secrets.token_hex(32)
        self.redis = RedisServer(self.workdir, redis_port)
        shared = {
            "REDIS_URL": self.redis.url,
            "STREAM_SERVER_CACHE_SECRET": self.secret,  # the same on every replica: entries are shared
            # the replicas share this machine's cores: one torch thread each unless told otherwise
            "STREAM_SERVER_ENGINE__TORCH_THREADS": str(max(1, (os.cpu_count() or 2) // 2)),
            **(env or {}),
        }
        self.replicas = [Replica(f"replica{i}", self.workdir, env=shared, args=serve_args) for i in range(2)]
        self.front = FrontDoor(self.workdir, [r.address for r in self.replicas], port)

    def start(self, timeout: float = 240.0) -> "Cluster":
        try:
            self.redis.start()
            for replica in self.replicas:  # both load their voices at once
                replica.start()
            for replica in self.replicas:
                replica.wait_ready(timeout)
            self.front.start()
            self.front.wait_states({r.name: "UP" for r in self.replicas})
        except BaseException:
            self.stop()
            raise
        return self

    def replica(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def stop(self) -> None:
        for replica in self.replicas:
            replica.signal(signal.SIGTERM)  # both drain at once
        for replica in self.replicas:
            replica.stop()
        self.front.stop()
        self.redis.stop()

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    serve_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8080, help="the front door's port (default 8080)")
    ap.add_argument("--redis-port", type=int, default=None, help="Redis's port (default: a free one)")
    ap.add_argument("--workdir", default=None, help="where the logs go (default: a new temporary directory)")
    args = ap.parse_args(own)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="stream-server-cluster-"))

    stop = False

    def on_signal(sig, frame):
        nonlocal stop
        stop = True

    cluster = Cluster(workdir, args.port, serve_args=serve_args, redis_port=args.redis_port)
    print(f"cluster: starting Redis, two replicas and HAProxy (logs in {workdir})", flush=True)
    cluster.start()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"cluster: front door http://127.0.0.1:{cluster.front.port}/ and "
          f"ws://127.0.0.1:{cluster.front.port}/v1/tts/stream", flush=True)
    for r in cluster.replicas:
        print(f"cluster: {r.name} at {r.http} (pid {r.pid})", flush=True)
    print(f"cluster: Redis at {cluster.redis.url}; HAProxy admin socket {cluster.front.stats_socket}", flush=True)
    print("cluster: Ctrl-C stops it (the replicas drain first)", flush=True)
    try:
        while not stop:
            for p in (cluster.redis, *cluster.replicas, cluster.front):
                if not p.alive():
                    print(f"cluster: {p.name} exited (code {p.proc.returncode}); see {p.log_path}", flush=True)
                    stop = True
            time.sleep(1)  # a signal sets `stop`; the loop notices within a second
    finally:
        print("cluster: stopping (replicas drain first)", flush=True)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
