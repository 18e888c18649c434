"""A Fourier-domain streaming vocoder: latent frames -> one STFT frame each -> inverse STFT.

Distilled from a Piper voice's HiFi-GAN on the AR voice's own latent frames (train/vocoder_*):
a few ConvNeXt-style layers at the frame rate predict, per frame, the log magnitude and phase of
one `n_fft`-point spectrum; an inverse FFT, a Hann window and overlap-add at `hop` samples make
the audio (Vocos' and iSTFTNet's idea: no upsampling stack, so several times cheaper than
HiFi-GAN, bench/engine_profile.py).

Streaming: every convolution is a stride-1 conv over frames with `reach` frames on the left and
`right_reach` on the right (zero padded), every other op is per frame, and frame t's samples
land on output blocks t-1 .. t+2 (n_fft = 4 * hop). So the output block of frame s depends on
frames [s - left, s + right] with (left, right) = `receptive_field_frames()`, and a window with
that much context either side decodes its kept frames exactly as the whole sentence does. The
right reach is kept small on purpose: it is how many frames the AR model must have made past a
chunk before the chunk can be vocoded.

`mask` (training only): rows of a batch shorter than the batch are padded with masked frames;
they are zeroed before every convolution, which equals the zero padding at a sentence's edge,
so a padded row decodes as it would alone.

Shapes: B batch, C in_channels, F frames, d dim, N n_fft, H hop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import torch
import torch.nn.functional as Fn
from torch import Tensor, nn

OLA_SPAN = 4  # output blocks one frame's samples cover (n_fft = OLA_SPAN * hop)
OLA_FIRST = -1  # the first of them, relative to the frame: blocks t-1 .. t+2


@dataclass(frozen=True)
class FourierVocoderConfig:
    in_channels: int = 192
    hop: int = 256
    dim: int = 256
    layers: int = 6
    kernel: int = 5
    right_reach: int = 1  # frames each conv looks ahead; kernel - 1 - right_reach it looks back
    ffn_mult: int = 3
    max_log_magnitude: float = 6.0
    version: str = "fv-v1"

    def __post_init__(self) -> None:
        if not 0 <= self.right_reach < self.kernel:
            raise ValueError("right_reach must be in [0, kernel)")

    @property
    def n_fft(self) -> int:
        return OLA_SPAN * self.hop

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def as_dict(self) -> dict:
        return asdict(self)


class FrameConv(nn.Module):
    """Stride-1 conv over frames with an asymmetric reach: left = kernel - 1 - right."""

    def __init__(self, c_in: int, c_out: int, kernel: int, right: int, groups: int = 1) -> None:
        super().__init__()
        self.left, self.right = kernel - 1 - right, right
        self.conv = nn.Conv1d(c_in, c_out, kernel, groups=groups)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """x [B, c_in, F], keep [B, 1, F] (1 valid, 0 padding) -> [B, c_out, F]"""
        if keep is not None:
            x = x * keep
        return self.conv(Fn.pad(x, (self.left, self.right)))


class ConvNeXtLayer(nn.Module):
    """x + scale * W2 gelu(W1 LN(depthwise(x))): mixing over time, then per frame."""

    def __init__(self, cfg: FourierVocoderConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.depthwise = FrameConv(d, d, cfg.kernel, cfg.right_reach, groups=d)
        self.norm = nn.LayerNorm(d)
        self.up = nn.Linear(d, cfg.ffn_mult * d)
        self.down = nn.Linear(cfg.ffn_mult * d, d)
        self.scale = nn.Parameter(torch.full((d,), 1.0 / cfg.layers))

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        y = self.depthwise(x, keep).transpose(1, 2)  # [B, F, d]
        y = self.down(Fn.gelu(self.up(self.norm(y)))) * self.scale
        return x + y.transpose(1, 2)


class FourierVocoder(nn.Module):
    supports_mask = True

    def __init__(self, cfg: FourierVocoderConfig = FourierVocoderConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = FrameConv(cfg.in_channels, cfg.dim, cfg.kernel, cfg.right_reach)
        self.layers = nn.ModuleList(ConvNeXtLayer(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, 2 * cfg.bins)  # log magnitude, phase
        self.register_buffer("window", torch.hann_window(cfg.n_fft, periodic=True), persistent=False)

    @property
    def hop(self) -> int:
        return self.cfg.hop

    @property
    def spectral_hop(self) -> int:
        return self.cfg.hop  # one spectrum per frame

    def receptive_field_frames(self) -> tuple[int, int]:
        """(left, right) frames of context that make a window's kept frames equal the whole decode."""
        convs = 1 + self.cfg.layers
        right = self.cfg.right_reach
        left = self.cfg.kernel - 1 - right
        return convs * left + OLA_SPAN - 1 + OLA_FIRST, convs * right - OLA_FIRST

    def log_magnitude_and_phase(self, z: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z [B, C, F] -> each frame's spectrum as log magnitude and phase, [B, F, N/2+1] each"""
        keep = None if mask is None else mask[:, None, :].to(z.dtype)
        x = self.inp(z, keep)
        for layer in self.layers:
            x = layer(x, keep)
        h = self.head(self.norm(x.transpose(1, 2))).float()  # [B, F, 2 * bins]
        log_mag, phase = h.split(self.cfg.bins, dim=-1)
        return log_mag.clamp(max=self.cfg.max_log_magnitude), phase

    def synthesize(self, log_mag: Tensor, phase: Tensor, mask: Tensor | None = None) -> Tensor:
        """Spectra [B, F, N/2+1] -> audio [B, F * H]: inverse FFT, Hann window, overlap-add."""
        frames = torch.fft.irfft(torch.polar(torch.exp(log_mag), phase), n=self.cfg.n_fft) * self.window
        if mask is not None:
            frames = frames * mask[:, :, None].to(frames.dtype)
        return overlap_add(frames, self.cfg.hop)  # [B, F, N] -> [B, F * H]

    def forward(self, z: Tensor, mask: Tensor | None = None) -> Tensor:
        """z [B, C, F] (mask [B, F]) -> audio [B, F * H]"""
        return self.synthesize(*self.log_magnitude_and_phase(z, mask), mask)


def analysis_frames(audio: Tensor, hop: int) -> Tensor:
    """The spectra that overlap-add back to `audio` [B, (F + OLA_SPAN - 1) * H], which starts at
    block OLA_FIRST (one block before frame 0): frame t's Hann-windowed samples, scaled by the
    window's overlap sum, -> [B, F, N/2+1] complex. What the vocoder's frames would be if it
    reproduced `audio` exactly (training targets)."""
    n_fft = OLA_SPAN * hop
    window = torch.hann_window(n_fft, periodic=True, device=audio.device)
    frames = audio.unfold(-1, n_fft, hop) * window  # [B, F, N]
    overlap = float((window.square().view(OLA_SPAN, hop).sum(0)).mean())  # 1.5 for Hann at N / 4
    return torch.fft.rfft(frames) / overlap


def overlap_add(frames: Tensor, hop: int) -> Tensor:
    """frames [B, F, OLA_SPAN * H], frame t's samples starting at block t + OLA_FIRST ->
    audio [B, F * H] of blocks 0 .. F-1 (what falls outside is dropped)."""
    B, F, _ = frames.shape
    parts = frames.view(B, F, OLA_SPAN, hop)
    # extended blocks e = t + j (j the part) cover output blocks OLA_FIRST .. F + OLA_SPAN - 2
    total = cast(Tensor, sum(Fn.pad(parts[:, :, j], (0, 0, j, OLA_SPAN - 1 - j)) for j in range(OLA_SPAN)))
    return total[:, -OLA_FIRST : F - OLA_FIRST].reshape(B, F * hop)
