"""VITS residual coupling flow (mean-only), reverse direction: prior sample z_p -> latent z.

Each coupling layer keeps the first half of the channels and shifts the second half by a
WaveNet-style function of the first half; the layers are separated by channel flips. In a
multi-speaker voice each WaveNet also adds a projection of the speaker embedding g to every
layer's gate input (VITS' ``cond_layer``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..modules import ModuleSeq, module_list
from .onnx_weights import WeightBag


class GatedConvStack(nn.Module):
    """Non-causal WaveNet body: gated tanh*sigmoid convs with residual and skip 1x1 outputs."""

    def __init__(self, channels: int, kernel: int, layers: int, dilation_rate: int = 1, speaker_channels: int = 0):
        super().__init__()
        self.channels = channels
        # g [B, S, 1] -> one [2C] gate offset per layer, all layers' in one 1x1 conv
        self.cond = nn.Conv1d(speaker_channels, 2 * channels * layers, 1) if speaker_channels else None
        self.gates: ModuleSeq[nn.Conv1d] = module_list()
        self.res_skip: ModuleSeq[nn.Conv1d] = module_list()
        for i in range(layers):
            dilation = dilation_rate**i
            pad = dilation * (kernel - 1) // 2
            self.gates.append(nn.Conv1d(channels, 2 * channels, kernel, padding=pad, dilation=dilation))
            last = i == layers - 1
            self.res_skip.append(nn.Conv1d(channels, channels if last else 2 * channels, 1))

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        skip = torch.zeros_like(x)
        c = self.channels
        offsets = self.cond(g) if g is not None and self.cond is not None else None  # [B, 2C*L, 1]
        for i, (gate, rs) in enumerate(zip(self.gates, self.res_skip)):
            h = gate(x)  # [B, 2C, T]
            if offsets is not None:
                h = h + offsets[:, 2 * c * i : 2 * c * (i + 1)]
            acts = torch.tanh(h[:, :c]) * torch.sigmoid(h[:, c:])
            out = rs(acts)
            if i < len(self.gates) - 1:
                x = x + out[:, :c]
                skip = skip + out[:, c:]
            else:
                skip = skip + out
        return skip

    def load_piper(self, bag: WeightBag) -> None:
        if self.cond is not None:
            bag.conv(self.cond, "cond_layer")
        for i in range(len(self.gates)):
            bag.conv(self.gates[i], f"in_layers.{i}")
            bag.conv(self.res_skip[i], f"res_skip_layers.{i}")


class ShiftCoupling(nn.Module):
    """x = [xa, xb]; forward xb += f(xa), reverse xb -= f(xa)."""

    def __init__(self, channels: int, hidden: int, kernel: int, layers: int, speaker_channels: int = 0):
        super().__init__()
        self.half_channels = channels // 2  # (not `half`: nn.Module.half() is a method)
        self.inp = nn.Conv1d(self.half_channels, hidden, 1)
        self.net = GatedConvStack(hidden, kernel, layers, speaker_channels=speaker_channels)
        self.shift = nn.Conv1d(hidden, self.half_channels, 1)

    def reverse(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        xa, xb = x[:, : self.half_channels], x[:, self.half_channels :]
        xb = xb - self.shift(self.net(self.inp(xa), g))
        return torch.cat([xa, xb], dim=1)

    def load_piper(self, bag: WeightBag) -> None:
        bag.conv(self.inp, "pre")
        self.net.load_piper(bag.scope("enc"))
        bag.conv(self.shift, "post")


class LatentFlow(nn.Module):
    """Stack of coupling layers; forward order is (coupling, flip) x N, undone back to front."""

    def __init__(
        self,
        channels: int = 192,
        hidden: int = 192,
        kernel: int = 5,
        layers: int = 4,
        flows: int = 4,
        speaker_channels: int = 0,
    ):
        super().__init__()
        self.couplings = module_list(
            ShiftCoupling(channels, hidden, kernel, layers, speaker_channels) for _ in range(flows)
        )

    def reverse(self, z_p: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """z_p [B, C, F] -> z [B, C, F]; g [B, S, 1]: the speaker embedding (multi-speaker voices)."""
        x = z_p
        for coupling in reversed(self.couplings):
            x = coupling.reverse(x.flip(1), g)
        return x

    def load_piper(self, bag: WeightBag) -> None:
        """Load from names under ``flow.`` (couplings are flows.0, 2, 4, ...; odd ones are flips)."""
        for i, coupling in enumerate(self.couplings):
            coupling.load_piper(bag.scope(f"flows.{2 * i}"))
