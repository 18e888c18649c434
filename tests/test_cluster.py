"""Two real `stream-server serve` replicas behind HAProxy with one shared redis-server, as
`make cluster` runs them (deploy/cluster/): sessions through the front door, the sentence cache
shared between replicas, and one replica drained by SIGTERM while the other takes new sessions."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from prerequisites import require_file
from waiting import wait_until, wait_until_sync
from wsutil import Transcript, receive_until, send_json

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy" / "cluster"))

from cluster import Cluster  # noqa: E402
from processes import find_haproxy  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_file(find_haproxy() or "/usr/sbin/haproxy", "HAProxy", "`make system-deps` (apt-get install haproxy)")
    workdir = tmp_path_factory.mktemp("cluster")
    env = {
        "STREAM_SERVER_ENGINE__WARMUP": "false", "STREAM_SERVER_SERVER__SHUTDOWN_GRACE_SECONDS": "30",
        # routing and draining are under test, not capacity: 3 sessions at once on one replica
        # would pass what admission allows one of two replicas on 2 cores
        "STREAM_SERVER_ADMISSION__ENABLED": "false",
    }
    with Cluster(workdir, env=env) as running:
        yield running


async def open_session(cluster: Cluster):
    """A native session through the front door, and the replica HAProxy gave it to."""
    ws = await websockets.connect(f"{cluster.front.ws}/v1/tts/stream", max_size=None)
    served_by = ws.response.headers["X-Served-By"]
    ready = json.loads(await ws.recv())
    assert ready["type"] == "ready", ready
    return ws, served_by


async def session_on(cluster: Cluster, replica: str):
    """Sessions through the front door until one lands on `replica` (the balancer alternates
    between idle replicas, so this takes one or two)."""
    for _ in range(6):
        ws, served_by = await open_session(cluster)
        if served_by == replica:
            return ws
        await ws.close()
    pytest.fail(f"six sessions through the front door and none went to {replica}")


async def speak(ws, text: str) -> Transcript:
    t = Transcript()
    await send_json(ws, type="text", text=text)
    await send_json(ws, type="flush")
    await receive_until(ws, t, "flushed", timeout=120)
    return t


def sentence_ends(t: Transcript) -> list[dict]:
    return [m for m in t.messages if m["type"] == "sentence_end"]


def counted(replica, result: str) -> float:
    return replica.metrics().get("tts_cache_total", result=result)


async def test_http_goes_through_the_front_door(cluster):
    served = set()
    for _ in range(4):
        async with httpx.AsyncClient(base_url=cluster.front.http) as http:  # a new connection each
            voices = await http.get("/v1/voices")
        assert voices.status_code == 200 and voices.json()["voices"]
        served.add(voices.headers["X-Served-By"])
    assert served == {"replica0", "replica1"}  # idle replicas take turns


async def test_a_sentence_spoken_on_one_replica_is_a_cache_hit_on_the_other(cluster):
    text = "The ferry to the northern islands leaves twice a day."
    first_ws, first_replica = await open_session(cluster)
    other = next(r for r in cluster.replicas if r.name != first_replica)
    origin = cluster.replica(first_replica)
    stores = counted(origin, "store")
    async with first_ws:
        first = await speak(first_ws, text)
    assert [e["cached"] for e in sentence_ends(first)] == [False]
    # its audio is written to Redis after it was sent: wait for that write
    await wait_until(lambda: counted(origin, "store") > stores, timeout=15,
                     what=f"{first_replica} to store the sentence in Redis")
    hits = counted(other, "hit")
    async with await session_on(cluster, other.name) as ws:
        second = await speak(ws, text)
    assert [e["cached"] for e in sentence_ends(second)] == [True]
    key = ("default", 0)
    assert bytes(second.audio[key]) == bytes(first.audio[key])  # the same audio, bit for bit
    assert counted(other, "hit") == hits + 1  # from the shared Redis (its own LRU had never seen it)


async def test_sigterm_drains_one_replica_while_the_other_takes_new_sessions(cluster):
    """Runs last in this module: it stops a replica."""
    running, doomed = await open_session(cluster)
    survivor = next(r for r in cluster.replicas if r.name != doomed)
    t = Transcript()
    async with running:
        await send_json(running, type="text", text="The first sentence is here. And a second one follows it.")
        await send_json(running, type="flush")
        await receive_until(running, t, "sentence_start", timeout=120)
        cluster.replica(doomed).signal(signal.SIGTERM)
        # one failed /readyz check (503 "draining") and HAProxy sends nothing new its way
        await asyncio.to_thread(cluster.front.wait_states, {doomed: "DOWN", survivor.name: "UP"}, 15)

        async def new_session(i: int) -> str:
            ws, served_by = await open_session(cluster)
            async with ws:
                spoken = await speak(ws, f"Passenger number {i} boards the ferry.")
                await send_json(ws, type="end")
                await receive_until(ws, spoken, "done", timeout=60)
            assert spoken.sentences() == [f"Passenger number {i} boards the ferry."]
            return served_by

        assert await asyncio.gather(*(new_session(i) for i in range(3))) == [survivor.name] * 3
        # the running session on the draining replica gets all its audio, then 1001 (going away)
        await receive_until(running, t, "flushed", timeout=60)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(running.recv(), 60)
        assert closed.value.rcvd.code == 1001
    assert t.sentences() == ["The first sentence is here.", "And a second one follows it."]
    assert [m["type"] for m in t.messages].count("sentence_end") == 2
    replica = cluster.replica(doomed)
    wait_until_sync(lambda: not replica.alive(), timeout=60, what=f"{doomed} to exit after its drain")
    # uvicorn re-raises the SIGTERM it caught once its own shutdown is complete, so a clean drain
    # ends "killed by SIGTERM" (as a supervisor expects), not with an exit code
    assert replica.proc.returncode in (0, -signal.SIGTERM)
    log = replica.log()
    assert "event=shutdown_drained" in log and "Application shutdown complete" in log
    # after it is gone, the front door still serves: connections go to the survivor
    for _ in range(3):
        async with httpx.AsyncClient(base_url=cluster.front.http) as http:
            answer = await http.get("/readyz")
        assert answer.status_code == 200 and answer.headers["X-Served-By"] == survivor.name
