"""Streamed SoVITS decoding: a sentence is vocoded in chunks while the T2S still produces tokens.

Chunk k keeps tokens [start, end) and is decoded from the window [start - left, end + right)
(clipped to the tokens that exist), with the sentence's phones and style (``Conditioning``);
only the chunk's own samples are kept and the chunks are concatenated as they are.

What differs from the whole-sentence decode:
* all window tokens go through enc_p, but the flow and the HiFi-GAN generator are local (finite
  receptive fields: 32 and 11 latent frames for s2 v2), so they only run on the frames the kept
  audio needs;
  with the lookahead of ``default_context`` their truncation error is > 100 dB down;
* enc_p's self-attention (encoder_ssl, encoder2) sees the whole sequence: a window that does not
  reach the end of the sentence changes every frame a little. This is the error that remains; it
  shrinks only slowly with lookahead, since the rest of the sentence does not exist yet. MRTE
  attends over the phones only: given all of the sentence's phones it is exact per frame;
* noise: ``LatentNoise`` gives frame j the same vector in a window as in the whole decode.

Upstream streams differently (TTS.py, streaming_mode 2/3): each chunk re-runs enc_p on all tokens
so far with no lookahead, cross-fades the encoder output with the previous chunk's over 2 tokens,
runs flow + generator on the chunk plus the overlap only, and joins the audio with SOLA.

Speed: upstream resamples y to int(F / speed) + 1 frames, a ratio that depends on the sentence's
final length, which a stream does not know yet. Windows therefore resample on a fixed grid
(output frame j reads latent position (j + 0.5) * speed - 0.5, as torch's linear interpolation);
at speed 1 that is the identity and a one-window decode equals ``SovitsV2.decode`` exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...engine.chunking import ChunkConfig, chunk_bounds
from .sovits import Conditioning, LatentNoise, SovitsV2
from .sovits_windows import WindowJob, decode_windows, output_frame

__all__ = ["StreamContext", "chunk_config", "decode_chunks", "decode_window", "default_context", "output_frame",
           "snr_db"]


@dataclass(frozen=True)
class StreamContext:
    """Tokens of context decoded (and thrown away) on each side of a chunk."""

    left: int
    right: int  # costs latency: the chunk waits for these tokens from the T2S


def default_context() -> StreamContext:
    """64 tokens (2.6 s) of left context: enc_p on more costs time for < 0.2 dB. 8 tokens
    (0.32 s) of lookahead: the flow and generator are then as good as exact (their error is
    > 100 dB down); what remains is enc_p not seeing the rest of the sentence, which shrinks
    slowly with more lookahead (about 1.3 dB per doubling on random weights) while the first
    chunk's latency grows by one T2S step per token. Measured in bench/gpt_sovits_stream_error.py,
    asserted in tests/test_gpt_sovits_sovits.py."""
    return StreamContext(left=64, right=8)


def chunk_config(context: StreamContext | None = None, first_tokens: int = 6,
                 chunk_tokens: int = 24) -> ChunkConfig:
    """The engine's chunking in tokens: 6, 12, then 24 tokens (0.24 s, 0.48 s, 0.96 s)."""
    ctx = context or default_context()
    return ChunkConfig(first_chunk_frames=first_tokens, chunk_frames=chunk_tokens,
                       left_context=ctx.left, right_context=ctx.right)


@torch.no_grad()
def decode_window(model: SovitsV2, codes_window: torch.Tensor, cond: Conditioning, *, window_start: int,
                  keep: tuple[int, int], noise_scale: float = 0.0, noise: LatentNoise | None = None,
                  speed: float = 1.0, generator_margin: int | None = None) -> torch.Tensor:
    """Decode tokens [window_start, window_start + W) and return the audio of tokens keep=[start,
    end) (absolute token indices): [(end - start) * 1280] samples at speed 1.

    All W tokens go through enc_p (that is what context buys); the flow and the generator only
    run on the frames the kept audio can depend on (their receptive fields), which is exact and
    spares the generator, by far the most expensive part, from decoding the whole window.
    ``generator_margin`` (latent frames) trades that exactness for time: None is the generator's
    receptive field (11 frames for s2 v2); 6 costs < -90 dB, 4 about -74 dB (random weights).
    A batch of one of ``decode_windows`` (sovits_windows.py).
    """
    job = WindowJob(cond, window_start, keep, noise, speed)
    return decode_windows(model, codes_window.reshape(1, -1), [job], noise_scale, generator_margin)[0]


def decode_chunks(model: SovitsV2, codes: torch.Tensor, cond: Conditioning, config: ChunkConfig | None = None,
                  noise_scale: float = 0.0, noise: LatentNoise | None = None,
                  speed: float = 1.0) -> list[torch.Tensor]:
    """All chunks of a sentence whose tokens are known (what the engine does incrementally)."""
    config = config or chunk_config()
    codes = codes.reshape(-1)
    chunks = []
    for start, end in chunk_bounds(codes.numel(), config):
        lo, hi = max(0, start - config.left_context), min(codes.numel(), end + config.right_context)
        chunks.append(decode_window(model, codes[lo:hi], cond, window_start=lo, keep=(start, end),
                                    noise_scale=noise_scale, noise=noise, speed=speed))
    return chunks


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """10 log10(|ref|^2 / |ref - est|^2); inf when equal."""
    err = (reference - estimate).double().pow(2).sum()
    if err == 0:
        return math.inf
    return float(10 * torch.log10(reference.double().pow(2).sum() / err))
