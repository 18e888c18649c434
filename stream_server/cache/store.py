"""Where cached sentences live: Redis (shared, bounded by its maxmemory/LRU and a TTL) with a
small in-process LRU in front, and the fault handling around Redis.

Entries are authenticated and validated (codec.py): one that fails is deleted and counted
(`unauthenticated`: its tag is wrong; `corrupt`: anything else, a value of another Redis type (a
list, a hash) at the key included), and the sentence is synthesized. A read fetches at most the
largest valid entry for the voice (GETRANGE), so a planted huge value is never read whole.

Redis trouble never reaches a client: a failed, slow (past the socket timeout) or refused call
counts as a miss (or a skipped write), is counted and logged, and Redis is left alone for
`retry_after_s` so a dead server does not cost every sentence a timeout. After that the next call
tries again; redis-py reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from ..config import CacheSection
from .codec import CachedSentence, CorruptEntry, EntryCodec, EntryShape, UnauthenticatedEntry
from .keys import SentenceKey

_CACHE = CacheSection()  # the config's cache defaults

log = logging.getLogger(__name__)

# What a broken, slow or restarting Redis raises (socket errors surface as RedisError subclasses,
# but a cancelled read or an OS error can slip through).
_FAULTS = (RedisError, OSError, asyncio.TimeoutError)
_ANY_RATE = 48000  # a read without a voice's shape is bounded as for the highest output rate


def make_client(url: str, socket_timeout_s: float, max_connections: int) -> aioredis.Redis:
    """One client per server: a bounded, blocking pool, short timeouts and no client-side retry
    loop (redis-py's default retries 10 times with backoff; the store's breaker replaces it)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=socket_timeout_s,  # waiting for a free connection counts as slow too
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))


class CacheStats:
    """Counts by event name; `listener` forwards each count (e.g. to Prometheus)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.listener: Callable[[str], None] = lambda name: None

    def count(self, name: str) -> None:
        self.counts[name] += 1
        self.listener(name)

    def __getitem__(self, name: str) -> int:
        return self.counts[name]


class LocalLRU:
    """In-process LRU bounded in bytes of PCM, entries expire with the same TTL as Redis'."""

    def __init__(self, max_bytes: int, ttl_s: float) -> None:
        self.max_bytes, self.ttl_s = max_bytes, ttl_s
        self._items: OrderedDict[str, tuple[float, CachedSentence]] = OrderedDict()
        self._bytes = 0

    def get(self, digest: str) -> CachedSentence | None:
        item = self._items.get(digest)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._drop(digest)
            return None
        self._items.move_to_end(digest)
        return item[1]

    def put(self, digest: str, entry: CachedSentence, expires_at: float | None = None) -> None:
        """`expires_at` (time.monotonic()): when the entry's life ends (a copy of a Redis entry
        dies with it); None: ttl_s from now."""
        size = entry.pcm.nbytes
        if size > self.max_bytes:
            return
        self._drop(digest)
        end = time.monotonic() + self.ttl_s
        self._items[digest] = (end if expires_at is None else min(end, expires_at), entry)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def _drop(self, digest: str) -> None:
        item = self._items.pop(digest, None)
        if item is not None:
            self._bytes -= item[1].pcm.nbytes

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0


class SentenceCache:
    """get/put of whole sentences by key; never raises for store trouble."""

    def __init__(
        self,
        client: aioredis.Redis | None,
        *,
        ttl_s: float,
        key_prefix: str = _CACHE.key_prefix,
        local: LocalLRU | None = None,
        retry_after_s: float = _CACHE.retry_after_s,
        stats: CacheStats | None = None,
        codec: EntryCodec | None = None,
    ) -> None:
        self.client = client
        # None: a random secret (entries this object alone can read; runtime.py picks the real one)
        self.codec = codec or EntryCodec.with_random_secret()
        self.ttl_s = ttl_s
        self.key_prefix = key_prefix
        self.local = local
        self.retry_after_s = retry_after_s
        self.stats = stats or CacheStats()
        self._down_until: float | None = None  # Redis is being left alone until then

    # --- reads ------------------------------------------------------------------------------
    async def get(self, key: SentenceKey, shape: EntryShape | None = None) -> CachedSentence | None:
        """The entry for the key, valid for a voice of this shape (rate and hop; None: any)."""
        entry = self.local.get(key.digest) if self.local else None
        if entry is not None and _matches(entry, key):
            self.stats.count("hit_local")
            return entry
        entry, expires_at = await self._get_redis(key, shape)
        if entry is None:
            self.stats.count("miss")
            return None
        if self.local:
            self.local.put(key.digest, entry, expires_at)
        self.stats.count("hit")
        return entry

    async def _get_redis(
        self, key: SentenceKey, shape: EntryShape | None
    ) -> tuple[CachedSentence | None, float | None]:
        """The entry and when it expires in Redis, on time.monotonic()'s clock (None: never).
        Counted from before the request: a copy never outlives the Redis entry, however long
        the reply and its check take."""
        name = key.redis_name(self.key_prefix)
        most = self.codec.max_blob_bytes(shape.sample_rate if shape else _ANY_RATE)
        asked = time.monotonic()
        # Errors come back as replies (raise_on_error=False): a key of another type is the key's
        # fault, not Redis': it must not open the breaker for every sentence.
        reply = await self._call(
            "get",
            lambda c: c.pipeline(transaction=False).getrange(name, 0, most).pttl(name).execute(raise_on_error=False),
        )
        blob, pttl = reply if reply is not None else (b"", None)
        if isinstance(blob, ResponseError) and not _wrong_type(blob):
            self._on_fault("get", blob)
            return None, None
        if not blob:  # GETRANGE answers "" for a missing key; no entry is ever empty
            return None, None
        try:
            if isinstance(blob, ResponseError):
                raise CorruptEntry(f"not a string value ({blob})")
            if len(blob) > most:
                raise CorruptEntry(f"larger than the {most} bytes an entry can have")
            entry = self.codec.decode(blob, shape)
        except CorruptEntry as exc:
            kind = "unauthenticated" if isinstance(exc, UnauthenticatedEntry) else "corrupt"
            self.stats.count(kind)
            log.warning("sentence cache: %s entry %s removed (%s)", kind, name, exc)
            await self._call("delete", lambda c: c.delete(name))
            return None, None
        if not _matches(entry, key):
            # Same hash, different sentence or parameters: never play it. Left in place (it is
            # valid for its own sentence); our write after synthesis replaces it.
            self.stats.count("collision")
            log.warning("sentence cache: hash collision on %s, treated as a miss", name)
            return None, None
        return entry, (asked + pttl / 1000 if isinstance(pttl, int) and pttl >= 0 else None)

    # --- writes -----------------------------------------------------------------------------
    async def put(self, key: SentenceKey, entry: CachedSentence, shape: EntryShape | None = None) -> None:
        try:  # an entry every read would refuse (and delete) is not written
            self.codec.check(entry, shape)
        except CorruptEntry as exc:
            self.stats.count("not_stored")
            log.warning("sentence cache: %r not stored (%s)", key.spoken[:80], exc)
            return
        if self.local:
            self.local.put(key.digest, entry)
        name = key.redis_name(self.key_prefix)
        blob = self.codec.encode(entry)
        ttl_ms = max(1, int(self.ttl_s * 1000))
        if await self._call("set", lambda c: c.set(name, blob, px=ttl_ms)) is not None:
            self.stats.count("store")

    # --- Redis calls with the breaker -------------------------------------------------------
    async def _call(self, what: str, op):
        """Run op(client) unless Redis is being left alone; None on any fault."""
        if self.client is None:
            return None
        now = time.monotonic()
        if self._down_until is not None and now < self._down_until:
            self.stats.count("redis_skipped")
            return None
        try:
            result = await op(self.client)
        except _FAULTS as exc:
            self._on_fault(what, exc)
            return None
        if self._down_until is not None:
            self._down_until = None
            log.info("sentence cache: Redis is back, caching resumed")
        return result

    def _on_fault(self, what: str, exc: BaseException) -> None:
        self.stats.count("redis_error")
        first = self._down_until is None
        self._down_until = time.monotonic() + self.retry_after_s
        level = logging.WARNING if first else logging.DEBUG
        log.log(
            level,
            "sentence cache: Redis %s failed (%s: %s); synthesis goes on uncached, retrying in %.1fs",
            what, type(exc).__name__, exc, self.retry_after_s,
        )

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            await self.client.connection_pool.disconnect()


def _wrong_type(error: ResponseError) -> bool:
    """Redis' answer to a read of a key that holds a list, hash, set, ... (not a string)."""
    return str(error).startswith("WRONGTYPE")


def _matches(entry: CachedSentence, key: SentenceKey) -> bool:
    return entry.spoken == key.spoken and entry.material == key.material
