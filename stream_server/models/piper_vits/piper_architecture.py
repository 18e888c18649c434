"""The shape of a Piper VITS voice, read off its ONNX weights: every size, layer count, kernel and
dilation comes from the tensors and conv nodes, so low, medium and high voices (and x_low, and
multi-speaker ones) build the right modules without a table of qualities.

What this port does not implement is refused here with a message that says so (`UnsupportedVoice`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .onnx_weights import ConvSpec
from .vits_decoder import HifiganConfig, HifiganGenerator
from .vits_duration import StochasticDurationSampler
from .vits_flow import LatentFlow
from .vits_text_encoder import TextEncoder


class UnsupportedVoice(ValueError):
    """The ONNX file is not a Piper VITS export this port can run."""


@dataclass
class VitsModules:
    text_encoder: TextEncoder
    duration: StochasticDurationSampler
    flow: LatentFlow
    decoder: HifiganGenerator
    speaker_table: torch.Tensor | None  # emb_g [speakers, S]; None: single speaker


def _count(weights: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in weights if (m := rx.match(k))})


def _speaker_channels(weights: dict, name: str) -> int:
    w = weights.get(name)  # a 1x1 conv from the speaker embedding: [out, S, 1]
    return int(w.shape[1]) if w is not None else 0


def _decoder_config(weights: dict, specs: dict[str, ConvSpec]) -> HifiganConfig:
    n_up = _count(weights, r"dec\.ups\.(\d+)\.weight")
    n_blocks = _count(weights, r"dec\.resblocks\.(\d+)\.")
    if n_up == 0 or n_blocks % n_up:
        raise UnsupportedVoice(f"decoder with {n_up} upsampling layers and {n_blocks} residual blocks")
    per_stage = n_blocks // n_up
    ups = [specs[f"dec.ups.{i}"] for i in range(n_up)]
    type_1 = _count(weights, r"dec\.resblocks\.0\.(convs1)\.") > 0
    convs = "convs1" if type_1 else "convs"
    kernels, dilations = [], []
    for j in range(per_stage):
        n_convs = _count(weights, rf"dec\.resblocks\.{j}\.{convs}\.(\d+)\.weight")
        if n_convs == 0:
            raise UnsupportedVoice(f"decoder residual block {j} has no {convs} layers")
        block = [specs[f"dec.resblocks.{j}.{convs}.{k}"] for k in range(n_convs)]
        kernels.append(block[0].kernel)
        dilations.append(tuple(c.dilation for c in block))
    pre = weights["dec.conv_pre.weight"]  # [base, in, k]
    return HifiganConfig(
        in_channels=pre.shape[1],
        base_channels=pre.shape[0],
        up_rates=tuple(u.stride for u in ups),
        up_kernels=tuple(u.kernel for u in ups),
        res_kernels=tuple(kernels),
        res_dilations=tuple(dilations),
        edge_kernel=pre.shape[2],
        res_block_type=1 if type_1 else 2,
        speaker_channels=_speaker_channels(weights, "dec.cond.weight"),
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
    if "dp.convs.convs_sep.0.weight" not in weights:
        # VITS' deterministic DurationPredictor (use_sdp=False): no Piper voice ships one
        raise UnsupportedVoice("only the stochastic duration predictor (use_sdp) is implemented")
    return StochasticDurationSampler(
        channels=weights["dp.pre.weight"].shape[0],
        kernel=weights["dp.convs.convs_sep.0.weight"].shape[2],
        layers=_count(weights, r"dp\.convs\.convs_sep\.(\d+)\."),
        flows=_count(weights, r"dp\.flows\.(\d+)\.pre\.") + 1,  # flows.1 is not exported
        speaker_channels=_speaker_channels(weights, "dp.cond.weight"),
    )


def _latent_flow(weights: dict) -> LatentFlow:
    gate = weights["flow.flows.0.enc.in_layers.0.weight"]  # [2h, h, k]
    return LatentFlow(
        channels=2 * weights["flow.flows.0.pre.weight"].shape[1],
        hidden=gate.shape[1],
        kernel=gate.shape[2],
        layers=_count(weights, r"flow\.flows\.0\.enc\.in_layers\.(\d+)\."),
        flows=_count(weights, r"flow\.flows\.(\d+)\.pre\."),
        speaker_channels=_speaker_channels(weights, "flow.flows.0.enc.cond_layer.weight"),
    )


def build_modules(weights: dict[str, torch.Tensor], specs: dict[str, ConvSpec]) -> VitsModules:
    """Empty modules of the voice's shape (weights are loaded by the caller)."""
    try:
        return VitsModules(
            _text_encoder(weights),
            _duration_sampler(weights),
            _latent_flow(weights),
            HifiganGenerator(_decoder_config(weights, specs)),
            weights.get("emb_g.weight"),
        )
    except KeyError as exc:
        raise UnsupportedVoice(f"not a Piper VITS export this server can run: no tensor {exc}") from None
