"""Chunked decoding of latent frames equals the whole-sentence decode (the streaming vocoder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stream_server.engine.chunking import ChunkConfig, chunk_bounds
from stream_server.models.piper_vits.piper_voice import PiperVoice, SynthesisParams

pytestmark = pytest.mark.slow


def chunked_decode(voice: PiperVoice, z: torch.Tensor, cfg: ChunkConfig) -> np.ndarray:
    """What the engine does: decode each chunk with its context window, keep the middle."""
    hop, n = voice.hop_length, z.shape[-1]
    pieces = []
    for start, end in chunk_bounds(n, cfg):
        ws, we = max(0, start - cfg.left_context), min(n, end + cfg.right_context)
        audio = voice.decode(z[None, :, ws:we])[0]
        pieces.append(audio[(start - ws) * hop : (end - ws) * hop])
    return torch.cat(pieces).numpy()


@pytest.mark.parametrize(
    "text",
    [
        "Hi.",
        "The quick brown fox jumps over the lazy dog.",
        "Welcome back, traveler; the road north is closed until the storm passes, so rest here tonight.",
    ],
)
def test_chunks_equal_whole_sentence_decode(piper, text):
    left, right = piper.decoder_receptive_field_frames()
    cfg = ChunkConfig(first_chunk_frames=18, chunk_frames=64, left_context=left, right_context=right)
    with torch.inference_mode():
        z = piper.latents(text, SynthesisParams(seed=7))
        whole = piper.decode(z[None])[0].numpy()
        streamed = chunked_decode(piper, z, cfg)
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() <= 1e-3


def test_first_chunk_is_about_a_fifth_of_a_second(piper):
    first = chunk_bounds(400, ChunkConfig())[0]
    seconds = (first[1] - first[0]) * piper.hop_length / piper.sample_rate
    assert 0.15 <= seconds <= 0.25


def test_too_little_context_breaks_equality(piper):
    """Guards the test itself: without context the joins are audibly different."""
    cfg = ChunkConfig(first_chunk_frames=18, chunk_frames=64, left_context=0, right_context=0)
    with torch.inference_mode():
        z = piper.latents("The quick brown fox jumps over the lazy dog.", SynthesisParams(seed=7))
        whole = piper.decode(z[None])[0].numpy()
        streamed = chunked_decode(piper, z, cfg)
    assert np.abs(streamed - whole).max() > 1e-2
