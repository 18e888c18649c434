"""GPT-SoVITS v2 SoVITS (upstream ``SynthesizerTrn``, inference only): semantic tokens + phones +
reference spectrogram(s) -> 32 kHz audio, and reference audio features -> prompt tokens.

    ge      = mean over references of ref_enc(spec[:704])                      [1, 512, 1]
              (v2Pro/v2ProPlus: of PReLU(ref_enc(spec) + sv_emb(sv)), gin 1024, where sv is the
              reference's speaker-verification embedding; enc_p then gets ge_to512(ge))
    content = codebook[codes], repeated x2 in time (25 Hz tokens -> 50 Hz)     [1, 768, 2T]
    y       = enc_p(content, phones, ge) (speed: linear resampling of y)        [1, 192, F]
    z_p     = m + noise * exp(logs) * noise_scale                              [1, 192, F]
    audio   = dec(flow^-1(z_p, ge), ge)                                        [F * 640]

The noise is drawn per latent frame from a ``LatentNoise`` (one [192] vector per frame, in frame
order) rather than upstream's one ``randn_like(m)`` call, so that any window of a sentence can take
exactly the noise the whole-sentence decode uses there (see sovits_stream.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..piper_vits.onnx_weights import WeightBag
from .sovits_checkpoint import CheckpointError, SovitsCheckpoint, SovitsConfig, read_sovits_checkpoint
from .sovits_decoder import Generator
from .sovits_flow import CouplingFlow
from .sovits_ref import SpeakerStyle, StyleEncoder, spectrogram
from .sovits_text_encoder import PriorEncoder

References = torch.Tensor | Sequence[torch.Tensor]
Embeddings = torch.Tensor | Sequence[torch.Tensor] | None  # one SV embedding per reference (v2Pro)

_CODEBOOK = "quantizer.vq.layers.0._codebook."
# present in every s2 file, used only in training: codebook EMA statistics
_TRAINING_ONLY = (_CODEBOOK + "cluster_size", _CODEBOOK + "embed_avg")


@dataclass
class Conditioning:
    """What a sentence's windows share: the style vector and the encoded phones."""

    ge: torch.Tensor  # [1, gin, 1]
    text: torch.Tensor  # [1, hidden, P]


class LatentNoise:
    """Unit Gaussian noise for latent frames 0, 1, 2, ... drawn lazily in frame order, one
    [channels] vector per frame. Upstream's ``randn_like(m)`` fills [1, C, F] channel-major, so
    frame j's values depend on F; here they depend only on the generator and j, however many
    frames exist or are asked for at a time."""

    def __init__(self, generator: torch.Generator | None = None, channels: int = 192):
        self.generator = generator
        self.channels = channels
        self._frames: list[torch.Tensor] = []

    def frames(self, start: int, stop: int) -> torch.Tensor:
        """[1, channels, stop - start]."""
        while len(self._frames) < stop:
            self._frames.append(torch.randn(self.channels, generator=self.generator))
        return torch.stack(self._frames[start:stop], dim=1).unsqueeze(0)


class SovitsV2(nn.Module):
    def __init__(self, cfg: SovitsConfig = SovitsConfig()):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        fpt = cfg.frames_per_token
        self.ref_enc = StyleEncoder(cfg.style_bins, cfg.gin_channels)
        self.speaker = SpeakerStyle(cfg.sv_channels, cfg.gin_channels) if cfg.sv_channels else None
        self.ssl_proj = nn.Conv1d(cfg.ssl_dim, cfg.ssl_dim, fpt, stride=fpt)
        self.codebook = nn.Parameter(torch.zeros(cfg.codebook_size, cfg.ssl_dim))  # [bins, 768]
        self.enc_p = PriorEncoder(cfg)
        self.flow = CouplingFlow(cfg.inter_channels, cfg.hidden_channels, cfg.gin_channels)
        self.dec = Generator(cfg)

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.cfg.sampling_rate

    @property
    def needs_speaker_embedding(self) -> bool:
        """v2Pro/v2ProPlus: each reference's style needs its speaker-verification embedding."""
        return self.speaker is not None

    @property
    def samples_per_token(self) -> int:
        return self.cfg.samples_per_token  # 1280: 40 ms per 25 Hz token

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, ckpt: SovitsCheckpoint) -> SovitsV2:
        model = cls(ckpt.config)
        model.load_weights(ckpt.weights)
        return model.eval()

    def load_weights(self, weights: dict[str, torch.Tensor]) -> list[str]:
        """Copy upstream-named float32 weights in; returns the keys ignored as training-only.
        Raises CheckpointError on a missing, misshapen or unexpected weight."""
        bag = WeightBag(weights)
        try:
            self.ref_enc.load(bag.scope("ref_enc"))
            bag.conv(self.ssl_proj, "ssl_proj")
            bag.into(self.codebook, _CODEBOOK + "embed")
            if float(bag.take(_CODEBOOK + "inited").reshape(-1)[0]) != 1.0:
                raise CheckpointError("the codebook was never initialised (inited = 0)")
            self.enc_p.load(bag.scope("enc_p"))
            self.flow.load(bag.scope("flow"))
            self.dec.load(bag.scope("dec"))
            if self.speaker is not None and self.enc_p.style_in is not None:
                self.speaker.load(bag)
                bag.weights(self.enc_p.style_in, "ge_to512")
        except (KeyError, ValueError) as exc:
            raise CheckpointError(str(exc)) from exc
        unused = bag.unused()
        unexpected = [k for k in unused if k not in _TRAINING_ONLY and not k.startswith("enc_q.")]
        if unexpected:
            raise CheckpointError(f"unexpected weights (not a {self.cfg.version} SynthesizerTrn?): {unexpected[:5]}")
        return unused

    # -- reference ------------------------------------------------------------------------------
    def spectrogram(self, wav_32k: torch.Tensor) -> torch.Tensor:
        """Reference audio [N] at 32 kHz -> [1025, frames]."""
        c = self.cfg
        return spectrogram(wav_32k, c.filter_length, c.hop_length, c.win_length)

    @torch.no_grad()
    def style(self, refers: References, sv_embs: Embeddings = None) -> torch.Tensor:
        """One or several spectrograms ([1025, T] or [1, 1025, T]) -> ge [1, gin, 1], averaged; a
        v2Pro model also takes each reference's SV embedding ([sv] or [1, sv]), in the same order."""
        specs = [refers] if isinstance(refers, torch.Tensor) else list(refers)
        if not specs:
            raise ValueError("at least one reference spectrogram is needed")
        device = self.codebook.device  # spectrograms are made on the host (reference.py)
        ges = [self.ref_enc(s.reshape(1, self.cfg.spec_channels, -1).float().to(device)) for s in specs]
        if self.speaker is not None:
            svs = [sv_embs] if isinstance(sv_embs, torch.Tensor) else list(sv_embs or [])
            if len(svs) != len(specs):
                raise ValueError(f"a {self.cfg.version} model needs one speaker-verification embedding per "
                                 f"reference ({len(specs)} references, {len(svs)} embeddings)")
            ges = [self.speaker(ge, sv) for ge, sv in zip(ges, svs)]
        return torch.stack(ges).mean(0)

    @torch.no_grad()
    def condition(self, phones: torch.Tensor, refers: References | None = None, *,
                  ge: torch.Tensor | None = None, sv_embs: Embeddings = None) -> Conditioning:
        """A sentence's phones [P] plus either its references (and, v2Pro, their SV embeddings) or a
        style vector computed before (``style``: a voice's ge can be cached)."""
        if refers is not None and ge is None:
            ge = self.style(refers, sv_embs)
        elif ge is None or refers is not None:
            raise ValueError("give either reference spectrograms or ge")
        return Conditioning(ge=ge, text=self.enc_p.encode_text(phones.long()))

    # -- synthesis ------------------------------------------------------------------------------
    def content(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [1, 1, T], [T] or a batch [B, T] -> codebook vectors at the latent rate
        [B, 768, T * fpt]."""
        x = F.embedding(codes.reshape(-1, codes.shape[-1]).long(), self.codebook).transpose(1, 2)
        fpt = self.cfg.frames_per_token
        return x.repeat_interleave(fpt, dim=2) if fpt > 1 else x

    def hidden(self, codes: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """Encoder output before the speed change and projection: [1, hidden, T * fpt]."""
        return self.enc_p.hidden(self.content(codes), cond.text, cond.ge)

    def latent(self, y: torch.Tensor, cond: Conditioning, noise_scale: float = 0.0,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """y [1, hidden, F] (at the output rate) -> z [1, inter, F]; noise [1, inter, F]."""
        return self.latent_batch(y, cond.ge, noise_scale, noise)

    def latent_batch(self, y: torch.Tensor, ge: torch.Tensor, noise_scale: float = 0.0,
                     noise: torch.Tensor | None = None) -> torch.Tensor:
        """y [B, hidden, F], ge [B, gin, 1], noise [B, inter, F] (on any device) -> z [B, inter, F]."""
        m, logs = self.enc_p.stats(y)
        if noise_scale and noise is not None:
            m = m + noise.to(m) * torch.exp(logs) * noise_scale
        return self.flow.reverse(m, ge)

    def render(self, y: torch.Tensor, cond: Conditioning, noise_scale: float = 0.0,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """y [1, hidden, F] -> audio [F * 640]."""
        return self.dec(self.latent(y, cond, noise_scale, noise), cond.ge)[0]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, phones: torch.Tensor, refers: References,
               noise_scale: float = 0.5, speed: float = 1.0,
               generator: torch.Generator | None = None, sv_embs: Embeddings = None) -> torch.Tensor:
        """Whole-sentence decode as upstream ``SynthesizerTrn.decode`` -> audio [F' * 640] with
        F' = 2T (speed 1) or int(2T / speed) + 1."""
        cond = self.condition(phones, refers, sv_embs=sv_embs)
        y = PriorEncoder.change_speed(self.hidden(codes, cond), speed)
        noise = None
        if noise_scale:
            noise = LatentNoise(generator, self.cfg.inter_channels).frames(0, y.shape[-1])
        return self.render(y, cond, noise_scale, noise)

    @torch.no_grad()
    def extract_latent(self, ssl: torch.Tensor) -> torch.Tensor:
        """HuBERT features [1, 768, N] (50 Hz) -> prompt tokens [1, 1, N // 2]: stride-2
        projection, then the nearest codebook entry (squared Euclidean distance)."""
        if ssl.dim() != 3 or ssl.shape[0] != 1:
            raise ValueError(f"expected SSL features [1, {self.cfg.ssl_dim}, N], got {tuple(ssl.shape)}")
        x = self.ssl_proj(ssl.float())[0].t()  # [T, 768]
        e = self.codebook
        dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ e.t() + e.pow(2).sum(1)[None]  # [T, bins]
        return dist.argmin(dim=1).view(1, 1, -1)


def load_sovits(path: str | Path) -> SovitsV2:
    """Read a v2/v2Pro/v2ProPlus s2 ``.pth`` (restricted unpickling) into a ready, eval-mode model
    (float32)."""
    return SovitsV2.from_checkpoint(read_sovits_checkpoint(path))


def random_sovits(cfg: SovitsConfig = SovitsConfig(), seed: int = 0) -> SovitsV2:
    """A random-weight model (tests, benchmarks), initialised as a fresh upstream model: torch's
    default layer init, Xavier-uniform attention projections, unit-Gaussian codebook and phone
    embedding, relative-position tables ~ N(0, 1/d_head); the flow's output convs get N(0, 0.02)
    instead of upstream's zeros, which would make the flow an identity. Leaves the global RNG as
    it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SovitsV2(cfg)
        with torch.no_grad():
            model.codebook.normal_()
            for name, p in model.enc_p.named_parameters():
                if name.endswith(("rel_key", "rel_value")):
                    p.normal_(0, p.shape[-1] ** -0.5)
                elif name.endswith((".q.weight", ".k.weight", ".v.weight")):
                    nn.init.xavier_uniform_(p)
            for coupling in model.flow.couplings:
                bias = coupling.post.bias
                coupling.post.weight.normal_(0, 0.02)
                if bias is not None:
                    bias.normal_(0, 0.02)
    return model.eval()
