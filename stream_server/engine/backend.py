"""The contract between the engine and a model family: prefill / decode / vocode, per slot.

The engine hands out slots (the scheduler allocates them) and keeps every sentence's frames; a
backend owns whatever per-slot serving state its model needs (KV cache, conditioning, sampling
generators, reference audio features) and releases it when told.

- `prefill(slot, spoken, options)` loads a sentence into a slot. A non-autoregressive model returns
  every frame at once (`finished=True`); an autoregressive one returns none or a few, and `total`
  when it knows the length in advance (None when a stop token will decide).
- `decode(slots)` is one batched step over any subset of prefilled slots, each at its own position.
  Each row brings up to K new frames and says whether its sequence just ended (EOS, or its known
  length reached). A model that samples keeps one generator per slot, seeded at prefill from
  `options.seed`, and applies that request's own sampling parameters (SynthesisOptions), so a
  sentence's frames never depend on what else shares the batch.
- `vocode(windows, slots, spans)` turns frame windows into audio and returns, per row, the audio of
  the frames its chunk keeps ([span.start, span.end) of the window [span.window_start,
  span.window_end), sentence frame numbers); the context frames either side only shape it.
  `vocoder_context` is how many frames of context either side make a chunked decode equal the
  whole decode. A model whose audio per frame varies (a speed factor) returns what the kept
  frames last.
- `fingerprint` names the model and weights: the sentence cache keys on it.

A backend may split its prefill in two (`PreparingBackend`): `prepare(spoken, options)`, the heavy
half (text encoder, durations, conditioning), touches no slot state and may run on the engine's
prepare thread while the engine thread decodes and vocodes other sentences; `load(slot, prepared)`
puts the result into a slot on the engine thread (cheap). `prefill` stays the two in one.

A backend also describes itself (the voice listings and the sessions read it, never probing): its
family (`kind`), the language of the text it is given, its speakers' names, the espeak-ng voice
that phonemizes its text (for families that use one), and the most frames one sentence may have
(a model whose per-slot state is static: the sessions refuse longer sentences before they get
here). A family whose voices can be changed while they serve (GPT-SoVITS: api_v2's reference clip
and weights) gives a `control` (VoiceControl); the others give None.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .chunking import ChunkSpan
from .requests import SynthesisOptions


@dataclass
class PrefillResult:
    frames: torch.Tensor | None  # [C, n] frames available at once (None: none yet)
    total: int | None  # the sentence's frame count when known now; None: the model's stop decides
    finished: bool = False  # no decode steps follow: `frames` holds the whole sentence
    # (start, end) frame of each spoken word group, from the model's durations;
    # None: this backend does not know (the sentence then gets no word timings)
    word_frames: list[tuple[int, int]] | None = None


@dataclass
class DecodeResult:
    frames: torch.Tensor  # [B, K, C] new frames, one row per slot of the step
    lengths: list[int]  # valid frames per row (<= K: a sequence's last step may bring fewer)
    finished: list[bool]  # the row's sequence produced its last frame


class VoiceControl(Protocol):
    """What a protocol may change on a running voice, and what it must know to do so (GPT-SoVITS'
    api_v2: split methods, languages, reference clips, weights). The slow calls (prepare and set a
    reference, load weights) run off the event loop and the engine thread."""

    @property
    def version(self) -> str: ...  # the model's version, as its protocol names it (GPT-SoVITS: v2, v2Pro, ...)
    @property
    def text_languages(self) -> Collection[str]: ...  # languages a request's text may be in
    @property
    def split_methods(self) -> Collection[str]: ...  # how a request's text may be cut into sentences
    @property
    def weight_parts(self) -> Collection[str]: ...  # the parts whose weights may be swapped (GPT-SoVITS: gpt, sovits)

    def split(self, text: str, method: str, language: str) -> list[str]: ...

    def normalized_lengths(self, pieces: Sequence[str], language: str) -> list[int]:
        """Each piece's length once normalised (what upstream's split_bucket sorts pieces by)."""
        ...

    def prepare_reference(
        self, path: str, prompt_text: str, prompt_language: str, aux_paths: Sequence[str] = ()
    ) -> str:
        """A request's own reference clip (and auxiliary clips whose timbres it is blended with),
        made now if it is new: its id (ValueError: unusable)."""
        ...

    def set_default_reference(self, path: str, prompt_text: str, prompt_language: str) -> None:
        """The clip the voice speaks with when a request names none (ValueError: unusable)."""
        ...

    def request_options(self, reference: str, language: str) -> tuple[tuple[str, str], ...]:
        """SynthesisOptions.extra for a request's own reference (its id) and text language."""
        ...

    def load_weights(self, part: str, path: Path) -> Callable[[], None]:
        """New weights for a part, loaded now (ValueError: unusable). The call returned puts them in
        place: on the engine thread, while none of the voice's sentences is in flight
        (Engine.call_when_idle)."""
        ...


class ModelBackend(Protocol):
    # What a backend says of itself, read-only to the engine and the sessions: a backend may give
    # each as an attribute or as a property.
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...  # the model family: piper_vits, ar, gpt_sovits
    @property
    def language(self) -> str | None: ...  # the language of the text it is given (en_US, en, zh, auto); None: not known
    @property
    def speakers(self) -> Sequence[str]: ...  # names a client may ask for as "<voice>#<speaker>"; empty: one speaker
    @property
    def espeak_voice(self) -> str | None: ...  # the espeak-ng voice that phonemizes its text; None: none is used
    @property
    def max_sentence_frames(self) -> int | None: ...  # the most frames a sentence may have; None: no bound
    @property
    def control(self) -> VoiceControl | None: ...  # changes a protocol may make while it serves; None: none
    @property
    def sample_rate(self) -> int: ...
    @property
    def hop_length(self) -> int: ...  # audio samples per frame
    @property
    def frame_channels(self) -> int: ...  # C
    @property
    def max_slots(self) -> int: ...
    @property
    def vocoder_context(self) -> tuple[int, int]: ...  # (left, right) frames
    # (first, later) chunk sizes in frames for this model's frame rate; None: the engine's defaults
    @property
    def chunk_frames(self) -> tuple[int, int] | None: ...
    @property
    def fingerprint(self) -> str: ...

    def prefill(self, slot: int, spoken: str, options: SynthesisOptions) -> PrefillResult: ...

    def decode(self, slots: Sequence[int]) -> DecodeResult: ...

    def release(self, slot: int) -> None: ...

    def vocode(self, windows: torch.Tensor, slots: Sequence[int], spans: Sequence[ChunkSpan]) -> list[torch.Tensor]:
        """[B, C, W] frame windows (row b: slot slots[b], chunk spans[b]) -> per row, the float
        audio of the frames the chunk keeps."""
        ...

    def synthesize_offline(self, spoken: str, options: SynthesisOptions) -> np.ndarray:
        """Whole-sentence reference synthesis (what streaming must equal), float32, on private
        state: callable from any thread while the engine serves."""
        ...


@runtime_checkable
class PreparingBackend(Protocol):
    """A backend whose prefill comes in two halves (see the module's docstring)."""

    def prepare(self, spoken: str, options: SynthesisOptions) -> Any:
        """The slot-free half of a prefill: safe on any thread, concurrently with the engine's steps."""
        ...

    def load(self, slot: int, prepared: Any) -> PrefillResult:
        """The prepared sentence into `slot` (engine thread only)."""
        ...


def keep_frames(audio: torch.Tensor, spans: Sequence[ChunkSpan], hop: int) -> list[torch.Tensor]:
    """audio [B, W * hop] of whole windows -> the kept frames' samples of each row."""
    return [
        audio[b, (s.start - s.window_start) * hop : (s.end - s.window_start) * hop] for b, s in enumerate(spans)
    ]


def known_length_decode(frames: torch.Tensor, produced: Sequence[int], totals: Sequence[int]) -> DecodeResult:
    """A DecodeResult for models that know each sequence's length: `produced[b]` frames existed
    before this step, `totals[b]` in all. frames [B, K, C]."""
    k = frames.shape[1]
    lengths = [max(0, min(k, t - p)) for p, t in zip(produced, totals)]
    finished = [p + n >= t for p, n, t in zip(produced, lengths, totals)]
    return DecodeResult(frames, lengths, finished)
