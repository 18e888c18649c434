"""HiFi-GAN generator (VITS ``dec``): latent frames [B, 192, F] -> audio [B, F * 256].

Every layer is a stride-1 'same' convolution or a transposed convolution whose output is exactly
``stride`` times its input, so the generator is shift-equivariant in whole frames and has a
finite receptive field; ``receptive_field_frames`` computes it from the layer shapes. A
multi-speaker voice adds a projection of the speaker embedding after the first convolution: a
constant per channel, so neither property changes.

Piper's medium and low voices use HiFi-GAN's residual block type 2 (one conv per dilation), its
high voices type 1 (a dilated conv then an undilated one, per dilation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..modules import ModuleSeq, module_list
from .onnx_weights import WeightBag

_SLOPE = 0.1  # leaky ReLU slope inside the generator
_FINAL_SLOPE = 0.01  # the last activation uses torch's default slope


@dataclass(frozen=True)
class HifiganConfig:
    in_channels: int = 192
    base_channels: int = 256
    up_rates: tuple[int, ...] = (8, 8, 4)
    up_kernels: tuple[int, ...] = (16, 16, 8)
    res_kernels: tuple[int, ...] = (3, 5, 7)
    res_dilations: tuple[tuple[int, ...], ...] = ((1, 2), (2, 6), (3, 12))
    edge_kernel: int = 7  # conv_pre / conv_post
    res_block_type: int = 2  # HiFi-GAN residual block: 1 (Piper "high") or 2
    speaker_channels: int = 0  # multi-speaker voices: size of the speaker embedding g

    @property
    def hop(self) -> int:
        n = 1
        for r in self.up_rates:
            n *= r
        return n


def _same_conv(c_in: int, c_out: int, kernel: int, dilation: int = 1, bias: bool = True) -> nn.Conv1d:
    pad = dilation * (kernel - 1) // 2
    return nn.Conv1d(c_in, c_out, kernel, padding=pad, dilation=dilation, bias=bias)


class LightResBlock(nn.Module):
    """HiFi-GAN 'type 2' residual block: x += conv_d(lrelu(x)) for each dilation d."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.kernel = kernel
        self.dilations = dilations
        self.convs = module_list(_same_conv(channels, channels, kernel, d) for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, _SLOPE))
        return x

    def reach(self) -> int:
        """Samples of context each side this block looks at (at its own rate)."""
        return sum(d * (self.kernel - 1) // 2 for d in self.dilations)

    def load_piper(self, bag: WeightBag) -> None:
        for i, conv in enumerate(self.convs):
            bag.conv(conv, f"convs.{i}")


class ResBlock(nn.Module):
    """HiFi-GAN 'type 1' residual block: x += conv_1(lrelu(conv_d(lrelu(x)))) for each dilation d."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.kernel = kernel
        self.dilations = dilations
        self.convs = module_list(_same_conv(channels, channels, kernel, d) for d in dilations)
        self.smooth = module_list(_same_conv(channels, channels, kernel) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, smooth in zip(self.convs, self.smooth):
            x = x + smooth(F.leaky_relu(conv(F.leaky_relu(x, _SLOPE)), _SLOPE))
        return x

    def reach(self) -> int:
        return sum((d + 1) * (self.kernel - 1) // 2 for d in self.dilations)

    def load_piper(self, bag: WeightBag) -> None:
        for i, (conv, smooth) in enumerate(zip(self.convs, self.smooth)):
            bag.conv(conv, f"convs1.{i}")
            bag.conv(smooth, f"convs2.{i}")


class UpsampleStage(nn.Module):
    """lrelu -> transposed conv (x rate) -> mean of parallel residual blocks."""

    def __init__(self, channels_in: int, channels_out: int, rate: int, kernel: int, cfg: HifiganConfig):
        super().__init__()
        self.rate = rate
        # output length is exactly rate * input length: (T-1)*rate - 2*pad + kernel
        pad = (kernel - rate) // 2
        self.up = nn.ConvTranspose1d(channels_in, channels_out, kernel, stride=rate, padding=pad)
        block = ResBlock if cfg.res_block_type == 1 else LightResBlock
        self.blocks = module_list(
            block(channels_out, k, d) for k, d in zip(cfg.res_kernels, cfg.res_dilations)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(F.leaky_relu(x, _SLOPE))
        total = self.blocks[0](x)
        for block in self.blocks[1:]:
            total = total + block(x)
        return total / len(self.blocks)


class HifiganGenerator(nn.Module):
    def __init__(self, cfg: HifiganConfig = HifiganConfig()):
        super().__init__()
        self.cfg = cfg
        self.pre = _same_conv(cfg.in_channels, cfg.base_channels, cfg.edge_kernel)
        self.cond = nn.Conv1d(cfg.speaker_channels, cfg.base_channels, 1) if cfg.speaker_channels else None
        self.stages: ModuleSeq[UpsampleStage] = module_list()
        ch = cfg.base_channels
        for rate, kernel in zip(cfg.up_rates, cfg.up_kernels):
            self.stages.append(UpsampleStage(ch, ch // 2, rate, kernel, cfg))
            ch //= 2
        self.post = _same_conv(ch, 1, cfg.edge_kernel, bias=False)

    @property
    def hop(self) -> int:
        return self.cfg.hop

    def forward(self, z: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """z [B, C, F] -> audio [B, F * hop]; g [B, S, 1]: each row's speaker embedding."""
        x = self.pre(z)
        if g is not None and self.cond is not None:
            x = x + self.cond(g)
        for stage in self.stages:
            x = stage(x)
        x = self.post(F.leaky_relu(x, _FINAL_SLOPE))
        return torch.tanh(x)[:, 0]

    def receptive_field_frames(self) -> tuple[int, int]:
        """(left, right) latent frames that any output frame's samples depend on.

        Walks the layers from the output back to the input, tracking the span of input indices
        that the first and the last sample of one output frame read.
        """
        hop = self.hop
        lo, hi = 0, hop - 1  # samples of frame 0 at the output rate
        half = (self.cfg.edge_kernel - 1) // 2
        lo, hi = lo - half, hi + half  # post conv
        for stage in reversed(self.stages):
            reach = max(block.reach() for block in stage.blocks)
            lo, hi = lo - reach, hi + reach
            lo, hi = _transposed_conv_inputs(lo, hi, stage.up)
        lo, hi = lo - half, hi + half  # pre conv
        return -lo, hi

    def load_piper(self, bag: WeightBag) -> None:
        """Load from names under ``dec.``."""
        bag.conv(self.pre, "conv_pre")
        if self.cond is not None:
            bag.conv(self.cond, "cond")
        block_index = 0
        for i, stage in enumerate(self.stages):
            bag.conv(stage.up, f"ups.{i}")
            for block in stage.blocks:
                block.load_piper(bag.scope(f"resblocks.{block_index}"))
                block_index += 1
        bag.conv(self.post, "conv_post")


def _transposed_conv_inputs(lo: int, hi: int, up: nn.ConvTranspose1d) -> tuple[int, int]:
    """Input index span read by outputs lo..hi: output n = i*stride - pad + tap, tap < kernel."""
    stride, pad, kernel = up.stride[0], int(up.padding[0]), up.kernel_size[0]  # (torch types padding str | tuple)
    first = -((-(lo + pad - kernel + 1)) // stride)  # ceil division
    last = (hi + pad) // stride
    return first, last
