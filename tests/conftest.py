"""Shared fixtures: the real voice (loaded once) and a real uvicorn server on a free port."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from stream_server.config import AppConfig
from stream_server.server.background import BackgroundServer, free_port


@pytest.fixture(scope="session")
def server() -> BackgroundServer:
    config = AppConfig()
    config.server.port = free_port()
    config.engine.max_slots = 8
    config.session.max_text_chars = 2000
    with BackgroundServer(config) as running:
        yield running


@pytest.fixture(scope="session")
def piper():
    """A voice of the tests' own, for offline checks that need no server."""
    from stream_server.voice.piper_voice import PiperVoice

    return PiperVoice.from_package()


@pytest.fixture(scope="session")
def voice(server):
    """The same voice object the server runs (read-only use from tests)."""
    return server.services.voices[server.config.default_voice].voice


@pytest.fixture(scope="session")
def offline(voice, server):
    """Offline whole-sentence synthesis with the server's default parameters and seeding."""
    from stream_server.server.session import sentence_seed
    from stream_server.voice.piper_voice import SynthesisParams

    syn = server.config.synthesis
    cache: dict[str, np.ndarray] = {}
    lock = threading.Lock()

    def synth(sentence: str) -> np.ndarray:
        with lock:
            if sentence not in cache:
                params = SynthesisParams(
                    syn.noise_scale, syn.length_scale, syn.noise_w, sentence_seed(sentence)
                )
                cache[sentence] = voice.synthesize(sentence, params)
            return cache[sentence]

    return synth
