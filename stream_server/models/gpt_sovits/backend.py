"""A GPT-SoVITS v2 voice as an engine backend (engine/backend.py).

Frames are semantic tokens (25 per second, one per decode step, C = 1): prefill runs the T2S over
the reference's prompt (its phones, BERT features and tokens) and the sentence's phones; each
decode step samples one token per slot with that request's own parameters and generator, and EOS
ends the sentence (its length is unknown until then). The vocoder is SoVITS, decoding token
windows with context (sovits_stream.py) against the sentence's phones and the reference's style.

Per slot, the backend keeps the T2S state (T2SSlots) and the sentence's SoVITS conditioning, latent
noise source and speed. Per request, `options.extra` may name a reference ("ref", registered in
the ReferenceBook) and the text language ("lang"); `length_scale` is 1 / upstream's speed_factor.
What api_v2 changes while the voice serves (references, weights) goes through `control`
(control.py, the engine contract's VoiceControl). A request with a fixed api_v2 seed
(`options.shared_rng`) draws from one generator in upstream's order and is decoded whole per
piece (shared_rng.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...engine.backend import DecodeResult, PrefillResult
from ...engine.chunking import ChunkSpan
from ...engine.requests import SynthesisOptions
from ..fingerprint import files_digest
from .control import LANGUAGE_OPTION, REFERENCE_OPTION, GptSovitsControl
from .reference import Frontend, Reference
from .references import ReferenceBook
from .sampling import SamplingParams
from .shared_rng import SharedGenerators, decode_whole, upstream_noise
from .sovits import Conditioning, LatentNoise, SovitsV2, load_sovits
from .sovits_stream import decode_window, default_context
from .sovits_windows import WindowJob, decode_windows
from .t2s_checkpoint import load_t2s
from .t2s_model import T2SModel
from .t2s_slots import T2SRequest, T2SSlots, decode_offline

NOISE_SCALE = 0.5  # upstream SynthesizerTrn.decode's default (api_v2 does not expose it)
TOKENS_PER_SECOND = 25
FIRST_CHUNK, LATER_CHUNKS = 6, 24  # tokens: 0.24 s first audio, then 0.96 s chunks
_NOISE_STREAM = 0x5EED  # the SoVITS noise generator's seed is the request seed xor this


@dataclass
class _Sentence:
    cond: Conditioning  # the sentence's phones and the reference's style
    noise: LatentNoise
    speed: float
    shared: torch.Generator | None = None  # the request's generator (shared_rng.py)
    whole_noise: torch.Tensor | None = None  # [1, inter, F'] drawn from it once the tokens are made


@dataclass(frozen=True)
class _Inputs:
    reference: Reference
    target: list[int]  # the sentence's phone ids (SoVITS)
    phones: torch.Tensor  # [Pp + P] prompt then sentence phones (T2S)
    bert: torch.Tensor  # [1024, Pp + P]


def sampling_params(options: SynthesisOptions) -> SamplingParams:
    """The request's sampling; None fields take upstream api_v2's defaults."""
    d = SamplingParams()
    return SamplingParams(
        top_k=d.top_k if options.top_k is None else options.top_k,
        top_p=d.top_p if options.top_p is None else options.top_p,
        temperature=d.temperature if options.temperature is None else options.temperature,
        repetition_penalty=d.repetition_penalty if options.repetition_penalty is None else options.repetition_penalty,
    )


class GptSovitsBackend:
    kind = "gpt_sovits"
    frame_channels = 1
    speakers: Sequence[str] = ()  # a voice is its reference clip: no named speakers
    espeak_voice: str | None = None  # its own text frontend phonemizes
    max_sentence_frames: int | None = None  # its GPT stops by itself (max_sec) and its cache says so at prefill

    def __init__(
        self, name: str, t2s: T2SModel, sovits: SovitsV2, frontend: Frontend, references: ReferenceBook,
        text_lang: str, max_slots: int, max_len: int, weight_files: tuple[Path, Path], device: str = "cpu",
        max_sec: float = 54.0,
    ) -> None:
        self.name = name
        self.t2s, self.sovits, self.frontend, self.references = t2s, sovits, frontend, references
        self.text_lang = text_lang
        self.max_slots, self.max_len = max_slots, max_len
        self.early_stop = int(TOKENS_PER_SECOND * max_sec)  # upstream: hz x max_sec tokens
        self.sample_rate = sovits.sample_rate  # 32000
        self.hop_length = sovits.samples_per_token  # 1280 samples per token
        context = default_context()
        self.vocoder_context = (context.left, context.right)
        self.chunk_frames = (FIRST_CHUNK, LATER_CHUNKS)
        self.device = device
        self.slots = T2SSlots(t2s, max_slots, max_len=max_len)
        self._sentences: dict[int, _Sentence] = {}
        self._shared = SharedGenerators(next(t2s.parameters()).device)
        self.weight_files = weight_files  # (GPT, SoVITS)
        self._weights_id = files_digest(weight_files)
        self.control = GptSovitsControl(self)

    @property
    def language(self) -> str:
        """The language of the text it is given (config text_lang: one of api_v2's v2 values)."""
        return self.text_lang

    @property
    def fingerprint(self) -> str:
        """Weights, device and the default reference (a request's own reference is in its options)."""
        device = next(self.t2s.parameters()).device.type
        return f"{self.kind}:weights={self._weights_id}:ref={self.references.default_id}:device={device}"

    # --- the engine's contract ----------------------------------------------------------------
    def prefill(self, slot: int, spoken: str, options: SynthesisOptions) -> PrefillResult:
        inputs = self._inputs(spoken, options)
        if not inputs.target:  # nothing to say (punctuation only)
            return PrefillResult(None, 0, finished=True)
        sentence = self._sentence(inputs, options)
        self.slots.prefill(
            slot, inputs.phones, inputs.bert, inputs.reference.prompt_tokens, sampling_params(options),
            seed=options.seed, early_stop_num=self.early_stop, generator=sentence.shared,
        )
        self._sentences[slot] = sentence
        return PrefillResult(None, None)  # the length is up to EOS

    def decode(self, slots: Sequence[int]) -> DecodeResult:
        step = self.slots.decode_step(list(slots))
        eos = step.tokens == self.slots.eos  # a row that stopped on EOS brings no token
        for slot, done in zip(slots, step.finished.tolist()):
            s = self._sentences[slot]
            if done and s.shared is not None:  # upstream draws the piece's noise before the next piece
                s.whole_noise = upstream_noise(s.shared, len(self.slots.generated(slot)), self.sovits, s.speed)
        frames = step.tokens.masked_fill(eos, 0).float().view(-1, 1, 1)  # [B, K=1, C=1]
        return DecodeResult(frames, [0 if e else 1 for e in eos.tolist()], step.finished.tolist())

    def release(self, slot: int) -> None:
        self.slots.release(slot)
        self._sentences.pop(slot, None)

    def vocode(self, windows: torch.Tensor, slots: Sequence[int], spans: Sequence[ChunkSpan]) -> list[torch.Tensor]:
        """All rows in one batch (windows [B, 1, W]: tokens as floats), each with its own sentence."""
        codes = windows[:, 0].long()
        whole = [self._sentences[slot].whole_noise is not None for slot in slots]
        rows = [i for i, w in enumerate(whole) if not w]
        out = dict(zip(rows, decode_windows(self.sovits, codes[rows], [self._job(slots[i], spans[i]) for i in rows],
                                            NOISE_SCALE) if rows else []))
        for i in (i for i, w in enumerate(whole) if w):
            s = self._sentences[slots[i]]
            assert s.whole_noise is not None
            out[i] = decode_whole(self.sovits, codes[i], s.cond, NOISE_SCALE, s.whole_noise, s.speed)
        return [out[i] for i in range(len(slots))]

    def _job(self, slot: int, span: ChunkSpan) -> WindowJob:
        s = self._sentences[slot]
        return WindowJob(s.cond, span.window_start, (span.start, span.end), s.noise, s.speed)

    def synthesize_offline(self, spoken: str, options: SynthesisOptions) -> np.ndarray:
        """Alone, on private state: the T2S on a private slot, then one SoVITS window over the whole
        sentence (which equals SovitsV2.decode at speed 1). With `options.shared_rng`, the next
        sentence of that request's generator, as it is served."""
        inputs = self._inputs(spoken, options)
        if not inputs.target:
            return np.zeros(0, np.float32)
        s = self._sentence(inputs, options)
        request = T2SRequest(inputs.phones, inputs.bert, inputs.reference.prompt_tokens, sampling_params(options),
                             options.seed, self.early_stop, s.shared)
        tokens = torch.tensor(decode_offline(self.t2s, [request], max_len=self.max_len)[0], dtype=torch.long)
        if s.shared is not None:  # as a request with a fixed seed is served (shared_rng.py)
            noise = upstream_noise(s.shared, len(tokens), self.sovits, s.speed)
            return decode_whole(self.sovits, tokens, s.cond, NOISE_SCALE, noise, s.speed).float().cpu().numpy()
        audio = decode_window(self.sovits, tokens, s.cond, window_start=0, keep=(0, len(tokens)),
                              noise_scale=NOISE_SCALE, noise=s.noise, speed=s.speed)
        return audio.float().cpu().numpy()

    # --- other weights (api_v2's /set_gpt_weights, /set_sovits_weights) --------------------------
    def load_t2s(self, path: Path) -> T2SModel:
        """New GPT weights, loaded (slow: off the event loop and the engine thread)."""
        return load_t2s(path, device=self.device)

    def load_sovits(self, path: Path) -> tuple[SovitsV2, ReferenceBook]:
        """New SoVITS weights and the default reference made again with them (slow, likewise)."""
        sovits = load_sovits(path).to(self.device)
        return sovits, self.references.for_model(sovits)

    def use_t2s(self, model: T2SModel, path: Path) -> None:
        """On the engine thread, with no sentence of this voice in flight (Engine.call_when_idle)."""
        self.t2s, self.slots = model, T2SSlots(model, self.max_slots, max_len=self.max_len)
        self._use_files((path, self.weight_files[1]))

    def use_sovits(self, loaded: tuple[SovitsV2, ReferenceBook], path: Path) -> None:
        self.sovits, self.references = loaded
        self._use_files((self.weight_files[0], path))

    def _use_files(self, files: tuple[Path, Path]) -> None:
        self.weight_files, self._weights_id = files, files_digest(files)

    # --- internals -----------------------------------------------------------------------------
    def _inputs(self, spoken: str, options: SynthesisOptions) -> _Inputs:
        reference = self.references.get(options.extra_value(REFERENCE_OPTION))
        target = self.frontend.phones(spoken, options.extra_value(LANGUAGE_OPTION) or self.text_lang)
        ids = list(target.phone_ids)
        phones = torch.tensor(reference.prompt_phones + ids, dtype=torch.long)
        bert = torch.cat([reference.prompt_bert, target.bert.to(reference.prompt_bert.dtype)], dim=1)
        return _Inputs(reference, ids, phones, bert)

    def _sentence(self, inputs: _Inputs, options: SynthesisOptions) -> _Sentence:
        cond = self.sovits.condition(torch.tensor(inputs.target, dtype=torch.long), ge=inputs.reference.style)
        generator = torch.Generator().manual_seed(int(options.seed) ^ _NOISE_STREAM)
        shared = None if options.shared_rng is None else self._shared.get(options.shared_rng)
        return _Sentence(cond, LatentNoise(generator, self.sovits.cfg.inter_channels), 1.0 / options.length_scale,
                         shared)
