"""Kaldi-style log mel filterbank, as GPT-SoVITS v2Pro feeds its speaker-verification model.

Upstream (GPT_SoVITS/sv.py) calls its copy of torchaudio's ``compliance.kaldi.fbank`` with
``num_mel_bins=80, sample_frequency=16000, dither=0`` and every other option at its default; this
is that one configuration, written out (torchaudio is not a dependency here):

* frames of 25 ms (400 samples) every 10 ms (160), only frames that fit whole (``snip_edges``);
* per frame: the mean removed, pre-emphasis 0.97 (the first sample against itself), Povey window
  (a symmetric Hann window to the power 0.85), zero padding to 512, power spectrum;
* 80 triangular filters equally spaced on Kaldi's mel scale (1127 ln(1 + f / 700)) from 20 Hz to
  Nyquist, over the first 256 FFT bins (the Nyquist bin has no filter weight);
* natural log, floored at float32's epsilon.

The window and the filter bank are computed in float32 with the same operations as upstream: the
log of a quiet band is sensitive enough that a bank computed in float64 (different by ~1e-5) moves
it by 1e-4; this way the features match upstream's bit for bit on the fixture.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

RATE = 16000
FRAME = 400  # 25 ms
SHIFT = 160  # 10 ms
N_FFT = 512  # the frame rounded up to a power of two
MEL_BINS = 80
LOW_HZ = 20.0
PREEMPHASIS = 0.97
POVEY_POWER = 0.85


def _mel_scalar(hz: float) -> float:
    return 1127.0 * math.log(1.0 + hz / 700.0)


@functools.lru_cache(maxsize=1)
def mel_banks() -> torch.Tensor:
    """[80, 257] triangular filters (zero on the Nyquist bin), float32."""
    low, high = _mel_scalar(LOW_HZ), _mel_scalar(RATE / 2)
    step = (high - low) / (MEL_BINS + 1)
    b = torch.arange(MEL_BINS).unsqueeze(1)
    left, centre, right = low + b * step, low + (b + 1.0) * step, low + (b + 2.0) * step  # [80, 1]
    mel = (1127.0 * (1.0 + RATE / N_FFT * torch.arange(float(N_FFT // 2)) / 700.0).log()).unsqueeze(0)
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    return F.pad(torch.clamp(torch.minimum(up, down), min=0.0), (0, 1))


@functools.lru_cache(maxsize=1)
def povey_window() -> torch.Tensor:
    """A symmetric Hann window to the power 0.85."""
    return torch.hann_window(FRAME, periodic=False).pow(POVEY_POWER)


def frames(wav: torch.Tensor) -> torch.Tensor:
    """[N] -> [M, 400] with M = 1 + (N - 400) // 160 (no frame for a clip under 25 ms)."""
    if wav.shape[0] < FRAME:
        return wav.new_zeros(0, FRAME)
    return wav.unfold(0, FRAME, SHIFT)


def fbank(wav16k: torch.Tensor) -> torch.Tensor:
    """Mono float audio [N] at 16 kHz (the scale as given: upstream passes [-1, 1]) -> [M, 80]."""
    x = frames(wav16k.float())
    x = x - x.mean(dim=1, keepdim=True)
    previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)
    x = (x - PREEMPHASIS * previous) * povey_window().to(x.device)
    power = torch.fft.rfft(F.pad(x, (0, N_FFT - FRAME))).abs().pow(2)
    energies = power @ mel_banks().to(x.device).T
    return energies.clamp_min(torch.finfo(torch.float32).eps).log()


def resample(wav: torch.Tensor, orig: int, new: int, taps: int = 6, rolloff: float = 0.99) -> torch.Tensor:
    """[N] float audio from `orig` to `new` Hz: upstream's SV input is its 32 kHz reference audio
    through torchaudio's ``Resample(32000, 16000)``; this is that algorithm (windowed-sinc
    interpolation, a squared-cosine window of `taps` zero crossings, cutoff `rolloff` x the lower
    Nyquist, kernel in the audio's dtype), written here since torchaudio is not a dependency; on
    the fixture it equals torchaudio 2.11's output within 6e-8."""
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    if orig == new:
        return wav
    cutoff = min(orig, new) * rolloff
    width = math.ceil(taps * orig / cutoff)
    idx = torch.arange(-width, width + orig, dtype=wav.dtype, device=wav.device)[None] / orig
    t = (torch.arange(0, -new, -1, dtype=wav.dtype, device=wav.device)[:, None] / new + idx) * cutoff
    t = t.clamp(-taps, taps)
    window = torch.cos(t * math.pi / taps / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t) * window * (cutoff / orig)
    x = F.pad(wav.reshape(1, 1, -1), (width, width + orig))
    out = F.conv1d(x, kernel[:, None], stride=orig).transpose(1, 2).reshape(-1)
    return out[: math.ceil(new * wav.shape[-1] / orig)]
