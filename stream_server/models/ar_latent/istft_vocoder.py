"""An iSTFT vocoder for the AR voice: the teacher HiFi-GAN's first upsampling stages, then an
inverse short-time Fourier transform in place of its last stage (iSTFTNet's idea).

Most of a HiFi-GAN's time goes to its last stage, whose residual convolutions run at the full
sample rate (for en_US-joe-medium ~60%: bench/engine_profile.py). Here the first `stages` stages
(copied from the teacher, then fine-tuned) bring the frames to 1/`sub_hop` of the sample rate; a
small conv head predicts, per sub-frame, the log magnitude and phase of an n_fft = 4 * sub_hop
point spectrum, and an inverse FFT, a Hann window and overlap-add make the samples. Distilled on
the AR voice's own frames (train/vocoder_*), so it also learns to undo what the AR model blurs.

Streaming: every layer is a stride-1 'same' conv, a transposed conv whose output is exactly
`rate` times its input, or per sub-frame, and sub-frame t's samples land on sub-blocks t-1 .. t+2;
so the model is shift-equivariant in whole frames with a finite receptive field
(`receptive_field_frames`), and a window with that context decodes its kept frames as the whole
sentence does.

Shapes: B batch, C in_channels, F frames, T = F * hop / sub_hop sub-frames, N n_fft.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as Fn
from torch import Tensor, nn

from ..modules import ModuleSeq, module_list
from ..piper_vits.vits_decoder import HifiganConfig, HifiganGenerator, UpsampleStage, transposed_conv_inputs
from .fourier_vocoder import OLA_FIRST, OLA_SPAN, overlap_add

_SLOPE = 0.1


@dataclass(frozen=True)
class IstftVocoderConfig:
    hifigan: HifiganConfig = field(default_factory=HifiganConfig)  # the teacher's shape
    stages: int = 2  # the teacher's upsampling stages kept
    head_layers: int = 1  # convs between the last stage and the spectrum projection
    head_kernel: int = 7
    max_log_magnitude: float = 6.0
    version: str = "istft-v1"

    @property
    def sub_hop(self) -> int:
        kept = 1
        for rate in self.hifigan.up_rates[: self.stages]:
            kept *= rate
        return self.hifigan.hop // kept

    @property
    def n_fft(self) -> int:
        return OLA_SPAN * self.sub_hop

    @property
    def channels(self) -> int:
        return self.hifigan.base_channels >> self.stages

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> IstftVocoderConfig:
        h = dict(d["hifigan"])
        for k in ("up_rates", "up_kernels", "res_kernels"):
            h[k] = tuple(h[k])
        h["res_dilations"] = tuple(tuple(x) for x in h["res_dilations"])
        rest = {k: v for k, v in d.items() if k != "hifigan" and k in {f for f in cls.__dataclass_fields__}}
        return cls(HifiganConfig(**h), **rest)


class IstftVocoder(nn.Module):
    supports_mask = False  # training windows are whole (see train/vocoder_trainer.py)

    def __init__(self, cfg: IstftVocoderConfig = IstftVocoderConfig()) -> None:
        super().__init__()
        h = cfg.hifigan
        if h.speaker_channels:
            raise ValueError("the iSTFT vocoder is for single-speaker voices")
        self.cfg = cfg
        self.pre = nn.Conv1d(h.in_channels, h.base_channels, h.edge_kernel, padding=(h.edge_kernel - 1) // 2)
        self.stages: ModuleSeq[UpsampleStage] = module_list()
        ch = h.base_channels
        for rate, kernel in zip(h.up_rates[: cfg.stages], h.up_kernels[: cfg.stages]):
            self.stages.append(UpsampleStage(ch, ch // 2, rate, kernel, h))
            ch //= 2
        pad = (cfg.head_kernel - 1) // 2
        self.head = nn.ModuleList(nn.Conv1d(ch, ch, cfg.head_kernel, padding=pad) for _ in range(cfg.head_layers))
        self.project = nn.Conv1d(ch, 2 * (cfg.n_fft // 2 + 1), cfg.head_kernel, padding=pad)
        self.register_buffer("window", torch.hann_window(cfg.n_fft, periodic=True), persistent=False)

    @classmethod
    def from_teacher(cls, teacher: HifiganGenerator, cfg: IstftVocoderConfig | None = None) -> IstftVocoder:
        """Its kept stages start as the teacher's (the head starts at random)."""
        model = cls(cfg or IstftVocoderConfig(hifigan=teacher.cfg))
        model.pre.load_state_dict(teacher.pre.state_dict())
        for mine, theirs in zip(model.stages, teacher.stages):
            mine.load_state_dict(theirs.state_dict())
        return model

    @property
    def hop(self) -> int:
        return self.cfg.hifigan.hop

    @property
    def spectral_hop(self) -> int:
        return self.cfg.sub_hop

    def log_magnitude_and_phase(self, z: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z [B, C, F] -> log magnitude and phase per sub-frame, [B, T, N/2+1] each"""
        if mask is not None and not bool(mask.all()):
            raise ValueError("the iSTFT vocoder decodes whole windows (no padding mask)")
        x = self.pre(z)
        for stage in self.stages:
            x = stage(x)
        for conv in self.head:
            x = x + conv(Fn.leaky_relu(x, _SLOPE))
        h = self.project(Fn.leaky_relu(x, _SLOPE)).transpose(1, 2).float()  # [B, T, 2 * bins]
        log_mag, phase = h.chunk(2, dim=-1)
        return log_mag.clamp(max=self.cfg.max_log_magnitude), phase

    def synthesize(self, log_mag: Tensor, phase: Tensor, mask: Tensor | None = None) -> Tensor:
        """[B, T, N/2+1] -> audio [B, T * sub_hop] = [B, F * hop]"""
        frames = torch.fft.irfft(torch.polar(torch.exp(log_mag), phase), n=self.cfg.n_fft) * self.window
        return overlap_add(frames, self.cfg.sub_hop)

    def forward(self, z: Tensor, mask: Tensor | None = None) -> Tensor:
        """z [B, C, F] -> audio [B, F * hop]"""
        return self.synthesize(*self.log_magnitude_and_phase(z, mask))

    def receptive_field_frames(self) -> tuple[int, int]:
        """(left, right) frames a frame's samples depend on: walks the layers from the output back
        to the input, as HifiganGenerator.receptive_field_frames does."""
        cfg = self.cfg
        per_frame = cfg.hifigan.hop // cfg.sub_hop  # sub-frames per frame
        # sub-blocks 0 .. per_frame-1 get sub-frames t with t + OLA_FIRST <= block <= t + OLA_FIRST + 3
        lo, hi = -OLA_FIRST - (OLA_SPAN - 1), per_frame - 1 - OLA_FIRST
        reach = (cfg.head_kernel - 1) // 2 * (1 + cfg.head_layers)
        lo, hi = lo - reach, hi + reach
        for stage in reversed(self.stages):
            r = max(block.reach() for block in stage.blocks)
            lo, hi = transposed_conv_inputs(lo - r, hi + r, stage.up)
        half = (cfg.hifigan.edge_kernel - 1) // 2
        return -(lo - half), hi + half
