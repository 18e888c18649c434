"""VITS stochastic duration predictor, sampling (reverse) direction only.

Given the text encoder's hidden states it maps 2-channel Gaussian noise through the inverse of
its normalising flow (rational-quadratic spline coupling layers, channel flips and a final
element-wise affine) and reads log-durations off channel 0. A multi-speaker voice adds a
projection of the speaker embedding to the conditioning input (VITS' ``dp.cond``).  The training-only posterior flows
(``dp.post_*``) and the first spline flow (``dp.flows.1``, dropped by VITS at inference) are
not part of the exported graph and not needed here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..modules import ModuleSeq, module_list
from .onnx_weights import WeightBag
from .vits_text_encoder import ChannelLayerNorm

_MIN_BIN = 1e-3
_MIN_SLOPE = 1e-3


class DilatedDepthwiseStack(nn.Module):
    """Residual stack of (depthwise dilated conv, LN, GELU, 1x1 conv, LN, GELU); dilation k**i."""

    def __init__(self, channels: int, kernel: int, layers: int):
        super().__init__()
        self.depthwise: ModuleSeq[nn.Conv1d] = module_list()
        self.pointwise: ModuleSeq[nn.Conv1d] = module_list()
        self.norm_a: ModuleSeq[ChannelLayerNorm] = module_list()
        self.norm_b: ModuleSeq[ChannelLayerNorm] = module_list()
        for i in range(layers):
            dilation = kernel**i
            pad = dilation * (kernel - 1) // 2
            self.depthwise.append(
                nn.Conv1d(channels, channels, kernel, padding=pad, dilation=dilation, groups=channels)
            )
            self.pointwise.append(nn.Conv1d(channels, channels, 1))
            self.norm_a.append(ChannelLayerNorm(channels))
            self.norm_b.append(ChannelLayerNorm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dw, pw, na, nb in zip(self.depthwise, self.pointwise, self.norm_a, self.norm_b):
            y = F.gelu(na(dw(x)))
            x = x + F.gelu(nb(pw(y)))
        return x

    def load_piper(self, bag: WeightBag) -> None:
        for i in range(len(self.depthwise)):
            bag.conv(self.depthwise[i], f"convs_sep.{i}")
            bag.conv(self.pointwise[i], f"convs_1x1.{i}")
            self.norm_a[i].load_piper(bag.scope(f"norms_1.{i}"))
            self.norm_b[i].load_piper(bag.scope(f"norms_2.{i}"))


def _knots(unnormalised: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Softmax bin sizes (with a floor) -> cumulative knot positions [..., bins+1] from lo to hi."""
    bins = unnormalised.shape[-1]
    sizes = _MIN_BIN + (1 - _MIN_BIN * bins) * torch.softmax(unnormalised, dim=-1)
    knots = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))
    knots = lo + (hi - lo) * knots
    knots[..., 0] = lo
    knots[..., -1] = hi
    return knots


def _pick(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return torch.gather(table, -1, index[..., None])[..., 0]


def inverse_rq_spline(
    y: torch.Tensor, widths: torch.Tensor, heights: torch.Tensor, slopes: torch.Tensor, bound: float
) -> torch.Tensor:
    """Invert a monotone rational-quadratic spline on [-bound, bound], identity outside.

    y: [...]; widths, heights: [..., K] unnormalised; slopes: [..., K-1] unnormalised inner
    knot derivatives (the two boundary derivatives are fixed to 1 so the tails join linearly).
    """
    inside = (y >= -bound) & (y <= bound)
    yc = y.clamp(-bound, bound)  # evaluate everywhere, keep only the inside results
    boundary = math.log(math.expm1(1 - _MIN_SLOPE))
    slopes = F.pad(slopes, (1, 1), value=boundary)
    deriv = _MIN_SLOPE + F.softplus(slopes)  # [..., K+1]

    xk = _knots(widths, -bound, bound)  # [..., K+1]
    yk = _knots(heights, -bound, bound)
    # bin whose output range holds y (last knot nudged up so y == bound lands in the last bin)
    yk_search = torch.cat([yk[..., :-1], yk[..., -1:] + 1e-6], dim=-1)
    k = (yc[..., None] >= yk_search).sum(-1) - 1
    k = k.clamp(0, widths.shape[-1] - 1)

    x0, w = _pick(xk, k), _pick(xk[..., 1:] - xk[..., :-1], k)
    y0, h = _pick(yk, k), _pick(yk[..., 1:] - yk[..., :-1], k)
    d0, d1 = _pick(deriv, k), _pick(deriv[..., 1:], k)
    s = h / w  # bin slope

    # solve a*t^2 + b*t + c = 0 for the bin coordinate t in [0, 1]
    dy = yc - y0
    curvature = d0 + d1 - 2 * s
    a = dy * curvature + h * (s - d0)
    b = h * d0 - dy * curvature
    c = -s * dy
    disc = (b * b - 4 * a * c).clamp_min(0)
    t = (2 * c) / (-b - torch.sqrt(disc))
    return torch.where(inside, t * w + x0, y)


class SplineCouplingFlow(nn.Module):
    """Channel 1 is transformed by a spline whose knots are predicted from channel 0 (+ cond)."""

    def __init__(self, channels: int, kernel: int, layers: int, bins: int = 10, bound: float = 5.0):
        super().__init__()
        self.channels = channels
        self.bins = bins
        self.bound = bound
        self.lift = nn.Conv1d(1, channels, 1)
        self.body = DilatedDepthwiseStack(channels, kernel, layers)
        self.to_params = nn.Conv1d(channels, 3 * bins - 1, 1)

    def reverse(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        z0, z1 = z[:, :1], z[:, 1:]  # [B, 1, T] each
        h = self.to_params(self.body(self.lift(z0) + cond))  # [B, 3K-1, T]
        h = h.transpose(1, 2)  # [B, T, 3K-1]
        scale = math.sqrt(self.channels)
        widths = h[..., : self.bins] / scale
        heights = h[..., self.bins : 2 * self.bins] / scale
        slopes = h[..., 2 * self.bins :]
        z1 = inverse_rq_spline(z1[:, 0], widths, heights, slopes, self.bound)[:, None]
        return torch.cat([z0, z1], dim=1)

    def load_piper(self, bag: WeightBag) -> None:
        bag.conv(self.lift, "pre")
        self.body.load_piper(bag.scope("convs"))
        bag.conv(self.to_params, "proj")


class StochasticDurationSampler(nn.Module):
    """hidden [B, H, T] + noise [B, 2, T] -> log durations [B, T]."""

    def __init__(
        self, channels: int = 192, kernel: int = 3, layers: int = 3, flows: int = 4, speaker_channels: int = 0
    ):
        super().__init__()
        self.pre = nn.Conv1d(channels, channels, 1)
        self.cond = nn.Conv1d(speaker_channels, channels, 1) if speaker_channels else None
        self.body = DilatedDepthwiseStack(channels, kernel, layers)
        self.post = nn.Conv1d(channels, channels, 1)
        # piper index of each spline flow, in the order they are undone (flows.1 is unused)
        self.flow_ids = list(range(2 * flows - 1, 1, -2))  # [7, 5, 3]
        self.splines = module_list(SplineCouplingFlow(channels, kernel, layers) for _ in self.flow_ids)
        self.affine_shift = nn.Parameter(torch.zeros(2, 1))
        self.affine_inv_scale = nn.Parameter(torch.ones(2, 1))

    def condition(self, hidden: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pre(hidden)
        if g is not None and self.cond is not None:
            x = x + self.cond(g)  # g [B, S, 1]: the same offset at every phoneme
        return self.post(self.body(x))

    def forward(self, hidden: torch.Tensor, noise: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.condition(hidden, g)
        z = noise
        for spline in self.splines:
            z = spline.reverse(z.flip(1), cond)  # undo Flip, then undo the spline
        z = z.flip(1)
        z = (z - self.affine_shift) * self.affine_inv_scale  # undo the element-wise affine
        return z[:, 0]

    def load_piper(self, bag: WeightBag) -> None:
        """Load from names under ``dp.``."""
        bag.conv(self.pre, "pre")
        if self.cond is not None:
            bag.conv(self.cond, "cond")
        self.body.load_piper(bag.scope("convs"))
        bag.conv(self.post, "proj")
        for spline, idx in zip(self.splines, self.flow_ids):
            spline.load_piper(bag.scope(f"flows.{idx}"))
        bag.into(self.affine_shift, "flows.0.m")
        # exp(-logs) as the exporter left it: folded whole, or -logs with the Exp still in the graph
        if bag.has("flows.0.exp_neg_logs"):
            bag.into(self.affine_inv_scale, "flows.0.exp_neg_logs")
        else:
            with torch.no_grad():
                self.affine_inv_scale.copy_(torch.exp(bag.take("flows.0.neg_logs")))
