"""The references a GPT-SoVITS voice speaks with: its default one (from the config) and those that
requests bring (api_v2's `ref_audio_path`), each made once per clip and transcript and kept.

Making a reference runs HuBERT and SoVITS' encoders, so the server does it off the event loop
(a worker thread) before it submits the sentence; the engine thread only looks references up.
The book is bounded (least recently used ones go; the default stays) and guarded by a lock.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from .reference import EmbedSpeaker, Reference, ReferenceError, check_clip, clip_digest, clip_style
from .sovits import SovitsV2
from .sv_model import missing_speaker_model

Maker = Callable[[Path, str, str, SovitsV2], Reference]


class ReferenceBook:
    def __init__(self, maker: Maker | None, sovits: SovitsV2, max_entries: int = 32,
                 speaker: EmbedSpeaker | None = None) -> None:
        if speaker is None and getattr(sovits, "needs_speaker_embedding", False):  # (tests pass no model)
            raise missing_speaker_model(sovits.cfg.version)
        self._maker = maker
        self._sovits = sovits  # prompt tokens and style come from this model
        self._speaker = speaker  # v2Pro: the SV model the maker uses too (auxiliary clips here)
        self._max = max(1, max_entries)
        self._refs: OrderedDict[str, Reference] = OrderedDict()
        self._default: Reference | None = None
        self._default_source: tuple[Path, str, str] | None = None
        self._lock = threading.Lock()

    def for_model(self, sovits: SovitsV2) -> ReferenceBook:
        """A book for other SoVITS weights: the default reference made again with them (slow: off
        the event loop); others are made again when requests bring them."""
        book = ReferenceBook(self._maker, sovits, self._max, self._speaker)
        if self._default_source is not None:
            book.set_default(*self._default_source)
        return book

    @property
    def default_id(self) -> str:
        return self._default.ref_id if self._default is not None else "none"

    def set_default(self, path: str | Path, prompt_text: str, prompt_lang: str) -> Reference:
        """Make the voice speak with this clip unless a request brings its own."""
        reference = self.prepare(path, prompt_text, prompt_lang)
        with self._lock:
            self._default, self._default_source = reference, (Path(path), prompt_text, prompt_lang)
        return reference

    def use_default(self, reference: Reference) -> None:
        """A reference made elsewhere (benchmarks, tests) as the default."""
        with self._lock:
            self._default, self._default_source = reference, None

    def prepare(
        self, path: str | Path, prompt_text: str, prompt_lang: str, aux_paths: Sequence[str | Path] = ()
    ) -> Reference:
        """The reference for this clip and transcript, made now if it is new (slow: call it off
        the event loop); with auxiliary clips, its timbre is the mean of theirs and its own, as
        upstream's SoVITS averages the style of each reference it is given."""
        reference = self._prepared(path, prompt_text, prompt_lang)
        aux = [Path(p) for p in aux_paths if str(p)]  # as upstream: "" skipped, a repeated clip counted again
        if not aux:
            return reference
        for clip in aux:
            check_clip(clip)  # before it is hashed
        ref_id = _blended_id(reference.ref_id, [clip_digest(clip, "", "") for clip in aux])
        sovits, speaker = self._sovits, self._speaker
        return self._kept(ref_id, lambda: replace(
            reference, ref_id=ref_id,
            style=torch.stack([reference.style, *(clip_style(clip, sovits, speaker) for clip in aux)]).mean(0),
        ))

    def _prepared(self, path: str | Path, prompt_text: str, prompt_lang: str) -> Reference:
        if self._maker is None:
            raise ReferenceError("this voice cannot make references (no HuBERT directory configured: hubert_dir)")
        path, maker, sovits = Path(path), self._maker, self._sovits
        check_clip(path)  # before the file is hashed: its size, that it is audio, its length
        ref_id = clip_digest(path, prompt_text, prompt_lang)
        return self._kept(ref_id, lambda: maker(path, prompt_text, prompt_lang, sovits))

    def _kept(self, ref_id: str, make: Callable[[], Reference]) -> Reference:
        """The book's reference `ref_id`, made (outside the lock) and kept if it is new."""
        with self._lock:
            known = self._refs.get(ref_id)
            if known is not None:
                self._refs.move_to_end(ref_id)
                return known
        reference = make()
        with self._lock:
            self._refs[ref_id] = reference
            while len(self._refs) > self._max:
                self._refs.popitem(last=False)
        return reference

    def get(self, ref_id: str | None) -> Reference:
        """A prepared reference by id, or the default one for None."""
        with self._lock:
            if ref_id is None:
                if self._default is None:
                    raise ReferenceError(
                        "this voice has no default reference: give ref_audio in the config or per request")
                return self._default
            if self._default is not None and ref_id == self._default.ref_id:
                return self._default
            reference = self._refs.get(ref_id)
        if reference is None:
            raise ReferenceError(f"reference {ref_id!r} is not prepared (or was dropped): prepare it again")
        return reference


def _blended_id(ref_id: str, aux_digests: list[str]) -> str:
    """A reference blended with auxiliary clips: its own id and theirs, in the order given."""
    return hashlib.sha256("\0".join([ref_id, *aux_digests]).encode()).hexdigest()[:16]
