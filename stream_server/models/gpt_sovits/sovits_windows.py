"""SoVITS token windows decoded as one batch (the engine's vocoder call for several slots).

A batch's windows have one length W (the engine stacks them), each its own sentence: its phones
(any length: padded, with a mask in MRTE's cross-attention), style vector, latent noise, speed and
kept span. enc_p runs on all rows at once. The flow and the generator run on the frames each row's
kept audio can depend on (see ``decode_window``), which differ between rows only at a sentence's
edges or speed; rows with the same spans stack exactly (no padding, so their zero-padded conv edges
are their own) and each group is one call (the generator's, on a CPU, two rows at a time). In
steady streaming every row is in one group.

Nothing here reads a tensor's value on the host: window geometry is host integers, noise is drawn
on the CPU (per-sentence generators) and copied to the model's device, so a GPU never waits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .sovits import Conditioning, LatentNoise, SovitsV2

CPU_GENERATOR_ROWS = 2  # rows per generator call on a CPU (see _row_batches)


@dataclass(frozen=True)
class WindowJob:
    """One row: tokens [window_start, window_start + W) of a sentence; keep = [start, end)."""

    cond: Conditioning
    window_start: int
    keep: tuple[int, int]
    noise: LatentNoise | None = None
    speed: float = 1.0


@dataclass(frozen=True)
class _Spans:
    """Output frames (window-relative): kept [a, b), generator input [d0, d1), flow input [f0, f1);
    o0 is the window's first output frame (absolute), n its output frame count."""

    o0: int
    n: int
    a: int
    b: int
    d0: int
    d1: int
    f0: int
    f1: int

    def group_key(self) -> tuple[int, int, int]:
        """Rows with equal keys run the same flow and generator shapes."""
        return self.f1 - self.f0, self.d0 - self.f0, self.d1 - self.d0


def output_frame(frame: int, speed: float) -> int:
    """First output frame of the fixed speed grid at or after latent frame boundary ``frame``."""
    if speed == 1:
        return frame
    return max(0, math.ceil(frame / speed - 0.5))


def resample(y: torch.Tensor, frame0: int, out0: int, out1: int, speed: float) -> torch.Tensor:
    """Linear resampling of y [B, C, W] (latent frames frame0 ...) to output frames [out0, out1).

    Positions are clamped at 0 (the sentence start) and at the window's last frame, which is the
    sentence's last frame when the window reaches the end.
    """
    width = y.shape[-1]
    pos = (torch.arange(out0, out1, dtype=torch.float64, device=y.device) + 0.5) * speed - 0.5
    local = (pos.clamp(min=0) - frame0).clamp(0, width - 1)
    i0 = local.floor().long()
    i1 = (i0 + 1).clamp(max=width - 1)
    w = (local - i0).to(y.dtype)
    return y[..., i0] * (1 - w) + y[..., i1] * w


def spans(model: SovitsV2, job: WindowJob, width: int, generator_margin: int | None) -> _Spans:
    """Where a row's kept audio lies and what the generator and the flow must see (host ints)."""
    fpt, speed = model.cfg.frames_per_token, job.speed
    w0, w1 = job.window_start, job.window_start + width
    k0, k1 = job.keep
    if not w0 <= k0 <= k1 <= w1:
        raise ValueError(f"keep {job.keep} is not inside the window [{w0}, {w1})")
    o0, o1 = output_frame(w0 * fpt, speed), output_frame(w1 * fpt, speed)
    a, b = output_frame(k0 * fpt, speed) - o0, output_frame(k1 * fpt, speed) - o0
    dec_reach = model.dec.receptive_field() if generator_margin is None else generator_margin
    flow_reach = model.flow.receptive_field()
    d0, d1 = max(0, a - dec_reach), min(o1 - o0, b + dec_reach)
    f0, f1 = max(0, d0 - flow_reach), min(o1 - o0, d1 + flow_reach)
    return _Spans(o0, o1 - o0, a, b, d0, d1, f0, f1)


def padded_text(conds: Sequence[Conditioning]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rows' encoded phones -> [B, C, P_max] (zero padded) and mask [B, P_max] (None: no padding)."""
    lengths = [c.text.shape[-1] for c in conds]
    longest = max(lengths)
    if all(n == longest for n in lengths):
        return torch.cat([c.text for c in conds]), None
    text = torch.cat([torch.nn.functional.pad(c.text, (0, longest - c.text.shape[-1])) for c in conds])
    mask = torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]  # built on the host
    return text, mask.to(text.device)


@torch.no_grad()
def decode_windows(model: SovitsV2, codes: torch.Tensor, jobs: Sequence[WindowJob], noise_scale: float = 0.0,
                   generator_margin: int | None = None) -> list[torch.Tensor]:
    """codes [B, W] (row b: jobs[b]) -> per row, the audio of its kept tokens [(end - start) * 1280]
    at speed 1; each row equals ``decode_window`` of that row alone (float rounding aside)."""
    if noise_scale and any(j.noise is None for j in jobs):
        raise ValueError("noise_scale > 0 needs the sentence's LatentNoise (the same for all its windows)")
    codes = codes.reshape(len(jobs), -1).to(model.codebook.device)  # the engine's frames live on the host
    geo = [spans(model, j, codes.shape[1], generator_margin) for j in jobs]
    ge = torch.cat([j.cond.ge for j in jobs])  # [B, gin, 1]
    text, mask = padded_text([j.cond for j in jobs])
    y = model.enc_p.hidden(model.content(codes), text, ge, mask)  # [B, C, W * fpt]
    fpt = model.cfg.frames_per_token
    rows = [y[i : i + 1] if j.speed == 1 else resample(y[i : i + 1], j.window_start * fpt, g.o0, g.o0 + g.n, j.speed)
            for i, (j, g) in enumerate(zip(jobs, geo))]  # B x [1, C, n_b]
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, g in enumerate(geo):
        groups.setdefault(g.group_key(), []).append(i)
    out: list[torch.Tensor] = [torch.empty(0)] * len(jobs)
    for members in groups.values():
        audio = _render(model, [rows[i] for i in members], [jobs[i] for i in members], [geo[i] for i in members],
                        ge[members], noise_scale)
        for i, pcm in zip(members, audio):
            out[i] = pcm
    return out


def _render(model: SovitsV2, ys: list[torch.Tensor], jobs: list[WindowJob], geo: list[_Spans], ge: torch.Tensor,
            noise_scale: float) -> list[torch.Tensor]:
    """Flow and generator over rows of one group (equal spans) -> each row's kept audio."""
    y = torch.cat([r[..., g.f0 : g.f1] for r, g in zip(ys, geo)])  # [G, C, f1 - f0]
    noise = None
    if noise_scale:
        noise = torch.cat([_noise(j, g) for j, g in zip(jobs, geo)])  # [G, inter, f1 - f0]
    z = model.latent_batch(y, ge, noise_scale, noise)
    g0 = geo[0]
    z = z[..., g0.d0 - g0.f0 : g0.d1 - g0.f0]  # [G, inter, d1 - d0]
    audio = torch.cat([_generate(model, z[i : i + n], ge[i : i + n]) for i, n in _row_batches(z)])
    hop = model.cfg.samples_per_frame
    return [pcm[(g.a - g.d0) * hop : (g.b - g.d0) * hop] for pcm, g in zip(audio, geo)]


def _row_batches(z: torch.Tensor) -> list[tuple[int, int]]:
    """(first row, rows) of each generator call. On a CPU, the generator's wide late stages
    (B x 32 channels x 40k samples) run faster in pairs than 4 at a time (measured 1.3 s against
    1.7 s for 4 rows of 70 frames, 2 threads); elsewhere one call."""
    step = CPU_GENERATOR_ROWS if z.device.type == "cpu" else z.shape[0]
    return [(i, min(step, z.shape[0] - i)) for i in range(0, z.shape[0], step)]


def _generate(model: SovitsV2, z: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
    """z [G, inter, F] -> [G, F * hop], in the generator's own precision (it may be bf16 alone)."""
    dtype = model.dec.pre.weight.dtype
    return model.dec(z.to(dtype), ge.to(dtype))


def _noise(job: WindowJob, g: _Spans) -> torch.Tensor:
    assert job.noise is not None  # checked by decode_windows
    return job.noise.frames(g.o0 + g.f0, g.o0 + g.f1)
