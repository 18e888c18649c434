"""SoVITS v2 flow (upstream ``flow``, a ResidualCouplingBlock), reverse direction only.

Four mean-only coupling layers separated by channel flips; each shifts one half of the channels by
a speaker-conditioned WaveNet of the other half. Piper's flow is the same shape but has no speaker
conditioning, so this one is separate. Every layer is a 'same' convolution: the flow is local,
each output frame reads ``receptive_field()`` frames either side.
"""

from __future__ import annotations

import torch
from torch import nn

from ..modules import module_list
from ..piper_vits.onnx_weights import WeightBag


class ConditionedWaveNet(nn.Module):
    """Gated dilated convs, tanh(a + g_a) * sigmoid(b + g_b), with residual and skip outputs.

    The speaker term g is constant over time: computed once per call as a per-layer bias.
    """

    def __init__(self, channels: int, kernel: int, layers: int, gin_channels: int, dilation_rate: int = 1):
        super().__init__()
        self.channels = channels
        self.kernel = kernel
        self.dilations = [dilation_rate**i for i in range(layers)]
        self.gates = module_list(
            nn.Conv1d(channels, 2 * channels, kernel, dilation=d, padding=d * (kernel - 1) // 2)
            for d in self.dilations
        )
        self.res_skip = module_list(
            nn.Conv1d(channels, channels if i == layers - 1 else 2 * channels, 1) for i in range(layers)
        )
        self.cond = nn.Conv1d(gin_channels, 2 * channels * layers, 1)

    def forward(self, x: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
        """x [1, C, F], ge [1, gin, 1] -> skip sum [1, C, F]."""
        c = self.channels
        cond = self.cond(ge).split(2 * c, dim=1)  # per layer [1, 2C, 1]
        skip = torch.zeros_like(x)
        last = len(self.gates) - 1
        for i, (gate, rs) in enumerate(zip(self.gates, self.res_skip)):
            h = gate(x) + cond[i]
            out = rs(torch.tanh(h[:, :c]) * torch.sigmoid(h[:, c:]))
            if i < last:
                x = x + out[:, :c]
                skip = skip + out[:, c:]
            else:
                skip = skip + out
        return skip

    def reach(self) -> int:
        return sum(d * (self.kernel - 1) // 2 for d in self.dilations)

    def load(self, bag: WeightBag) -> None:
        for i in range(len(self.gates)):
            bag.conv(self.gates[i], f"in_layers.{i}")
            bag.conv(self.res_skip[i], f"res_skip_layers.{i}")
        bag.conv(self.cond, "cond_layer")


class MeanCoupling(nn.Module):
    """x = [xa, xb]; reverse: xb -= post(WN(pre(xa), ge))."""

    def __init__(self, channels: int, hidden: int, kernel: int, layers: int, gin_channels: int):
        super().__init__()
        self.half_channels = channels // 2  # (not `half`: nn.Module.half() is a method)
        self.pre = nn.Conv1d(self.half_channels, hidden, 1)
        self.net = ConditionedWaveNet(hidden, kernel, layers, gin_channels)
        self.post = nn.Conv1d(hidden, self.half_channels, 1)

    def reverse(self, x: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
        xa, xb = x[:, : self.half_channels], x[:, self.half_channels :]
        return torch.cat([xa, xb - self.post(self.net(self.pre(xa), ge))], dim=1)

    def load(self, bag: WeightBag) -> None:
        bag.conv(self.pre, "pre")
        self.net.load(bag.scope("enc"))
        bag.conv(self.post, "post")


class CouplingFlow(nn.Module):
    """Upstream order is (coupling, flip) x N; the reverse undoes it back to front."""

    def __init__(self, channels: int = 192, hidden: int = 192, gin_channels: int = 512,
                 kernel: int = 5, layers: int = 4, flows: int = 4):
        super().__init__()
        self.couplings = module_list(
            MeanCoupling(channels, hidden, kernel, layers, gin_channels) for _ in range(flows))

    def reverse(self, z_p: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
        """z_p [1, C, F] -> z [1, C, F]."""
        x = z_p
        for coupling in reversed(self.couplings):
            x = coupling.reverse(x.flip(1), ge)
        return x

    def receptive_field(self) -> int:
        """Frames either side that one output frame depends on."""
        return sum(c.net.reach() for c in self.couplings)

    def load(self, bag: WeightBag) -> None:
        """From upstream names under ``flow.`` (couplings are flows.0, 2, 4, 6; odd ones are flips)."""
        for i, coupling in enumerate(self.couplings):
            coupling.load(bag.scope(f"flows.{2 * i}"))
