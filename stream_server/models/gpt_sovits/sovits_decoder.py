"""SoVITS v2 HiFi-GAN generator (upstream ``dec``): latent z [B, 192, F] + ge -> audio [B, F * 640].

Differs from Piper's generator in three ways, so it is its own module: 'type 1' residual blocks
(pairs of dilated + plain convolutions), a speaker-conditioning 1x1 conv added after ``conv_pre``,
and five upsampling stages (10, 8, 2, 2, 2). Like Piper's it is built only of 'same' convs and
exact-ratio transposed convs, so it is local with a finite receptive field.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..modules import ModuleSeq, module_list
from ..piper_vits.onnx_weights import WeightBag
from .sovits_checkpoint import SovitsConfig

_SLOPE = 0.1  # leaky ReLU inside the generator
_FINAL_SLOPE = 0.01  # upstream's last F.leaky_relu uses torch's default slope
_EDGE_KERNEL = 7  # conv_pre and conv_post


def _same_conv(c_in: int, c_out: int, kernel: int, dilation: int = 1, bias: bool = True) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation, bias=bias)


class ResBlock(nn.Module):
    """HiFi-GAN type 1: x += conv1(lrelu(conv_d(lrelu(x)))) for each dilation d."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.kernel = kernel
        self.dilations = dilations
        self.convs1 = module_list(_same_conv(channels, channels, kernel, d) for d in dilations)
        self.convs2 = module_list(_same_conv(channels, channels, kernel) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, _SLOPE)), _SLOPE))
        return x

    def reach(self) -> int:
        """Samples either side (at this block's rate) one output sample reads."""
        half = (self.kernel - 1) // 2
        return sum(d * half + half for d in self.dilations)

    def load(self, bag: WeightBag) -> None:
        for i in range(len(self.dilations)):
            bag.conv(self.convs1[i], f"convs1.{i}")
            bag.conv(self.convs2[i], f"convs2.{i}")


class Generator(nn.Module):
    def __init__(self, cfg: SovitsConfig):
        super().__init__()
        ch = cfg.upsample_initial_channel
        self.hop = cfg.samples_per_frame
        self.pre = _same_conv(cfg.inter_channels, ch, _EDGE_KERNEL)
        self.cond = nn.Conv1d(cfg.gin_channels, ch, 1)
        self.ups: ModuleSeq[nn.ConvTranspose1d] = module_list()
        self.blocks: ModuleSeq[ResBlock] = module_list()  # len(ups) * len(kernels), stage-major as upstream
        self.kernels_per_stage = len(cfg.resblock_kernel_sizes)
        for rate, kernel in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
            # output length is exactly rate * input length
            self.ups.append(nn.ConvTranspose1d(ch, ch // 2, kernel, rate, padding=(kernel - rate) // 2))
            ch //= 2
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.blocks.append(ResBlock(ch, k, tuple(d)))
        self.post = _same_conv(ch, 1, _EDGE_KERNEL, bias=False)

    def _stage(self, i: int) -> ModuleSeq[ResBlock]:
        n = self.kernels_per_stage
        return self.blocks[i * n : (i + 1) * n]

    def forward(self, z: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
        """z [B, C, F], ge [B, gin, 1] -> audio [B, F * hop]."""
        x = self.pre(z) + self.cond(ge)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, _SLOPE))
            stage = self._stage(i)
            total = stage[0](x)
            for block in stage[1:]:
                total = total + block(x)
            x = total / len(stage)
        x = self.post(F.leaky_relu(x, _FINAL_SLOPE))
        return torch.tanh(x)[:, 0]

    def receptive_field(self) -> int:
        """Latent frames either side that the samples of one frame depend on.

        Walks back from the output: the span of samples that frame 0's samples read, through
        each stage's residual blocks and transposed conv (output n = i * stride - pad + tap).
        """
        edge = (_EDGE_KERNEL - 1) // 2
        lo, hi = -edge, self.hop - 1 + edge  # frame 0's samples, widened by the post conv
        for i in reversed(range(len(self.ups))):
            up = self.ups[i]
            reach = max(b.reach() for b in self._stage(i))
            lo, hi = lo - reach, hi + reach
            stride, pad, kernel = up.stride[0], int(up.padding[0]), up.kernel_size[0]  # (typed str | tuple)
            lo = -((-(lo + pad - kernel + 1)) // stride)  # ceil division
            hi = (hi + pad) // stride
        return max(edge - lo, hi + edge)  # pre conv

    def load(self, bag: WeightBag) -> None:
        """From upstream names under ``dec.`` (weight norm already folded)."""
        bag.conv(self.pre, "conv_pre")
        bag.conv(self.cond, "cond")
        for i, up in enumerate(self.ups):
            bag.conv(up, f"ups.{i}")
        for i, block in enumerate(self.blocks):
            block.load(bag.scope(f"resblocks.{i}"))
        bag.conv(self.post, "conv_post")
