"""api_v2's `seed` as upstream spends it: one generator per request, drawn from in upstream's order.

Upstream (TTS.run) seeds torch's global generator once per request, then for each piece in turn
draws the T2S's exponentials (one per entry of the logits it samples from: V - 1 while EOS is cut
off, V after) and then SoVITS' latent noise, ``randn_like(m_p)`` of shape [1, 192, F'] (F' = 2T
output frames, or int(2T / speed) + 1 at another speed), before the next piece's T2S starts. So a
fixed seed fixes the whole request's audio.

Here a request with a fixed seed (SynthesisOptions.shared_rng) gets one ``torch.Generator`` seeded
as ``torch.manual_seed(seed)`` seeds the global one; the scheduler runs its pieces one after
another (each starts once the one before has made all its tokens) and vocodes each piece whole,
and the backend draws the piece's noise the moment its last token is made, in upstream's shape.
The piece is then decoded as upstream decodes it: one window, upstream's own speed resampling.
Other requests keep their per-sentence generators and streamed windows (sovits_stream.py).
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from .sovits import Conditioning, SovitsV2
from .sovits_text_encoder import PriorEncoder

MAX_STREAMS = 256  # requests whose generator is kept (LRU): one per api_v2 request in flight


class SharedGenerators:
    """The generator of each request that has one, by its stream key (LRU-bounded), on the T2S's
    device (upstream draws on the device its tensors are on: torch.manual_seed seeds them all)."""

    def __init__(self, device: torch.device | str = "cpu", capacity: int = MAX_STREAMS) -> None:
        self.device, self.capacity = torch.device(device), capacity
        self._gens: OrderedDict[str, torch.Generator] = OrderedDict()

    def get(self, stream: tuple[str, int]) -> torch.Generator:
        key, seed = stream
        gen = self._gens.get(key)
        if gen is None:
            gen = self._gens[key] = torch.Generator(device=self.device).manual_seed(seed)
            while len(self._gens) > self.capacity:
                self._gens.popitem(last=False)
        self._gens.move_to_end(key)
        return gen


def output_frames(tokens: int, frames_per_token: int, speed: float) -> int:
    """F': upstream's latent frames after its speed change (linear resampling to int(F / speed) + 1)."""
    frames = tokens * frames_per_token
    return frames if speed == 1 else int(frames / speed) + 1


def upstream_noise(generator: torch.Generator, tokens: int, sovits: SovitsV2, speed: float) -> torch.Tensor:
    """The piece's latent noise as upstream draws it: [1, inter, F'] in one call (channel-major)."""
    frames = output_frames(tokens, sovits.cfg.frames_per_token, speed)
    return torch.randn(1, sovits.cfg.inter_channels, frames, generator=generator, device=generator.device)


@torch.no_grad()
def decode_whole(sovits: SovitsV2, codes: torch.Tensor, cond: Conditioning, noise_scale: float,
                 noise: torch.Tensor, speed: float) -> torch.Tensor:
    """A whole piece as upstream's SynthesizerTrn.decode: tokens [T] -> audio [F' x 640]."""
    y = PriorEncoder.change_speed(sovits.hidden(codes.reshape(1, -1).to(sovits.codebook.device), cond), speed)
    return sovits.render(y, cond, noise_scale, noise).reshape(-1)
