"""The references a GPT-SoVITS voice speaks with: its default one (from the config) and those that
requests bring (api_v2's `ref_audio_path`), each made once per clip and transcript and kept.

Making a reference runs HuBERT and SoVITS' encoders, so the server does it off the event loop
(a worker thread) before it submits the sentence; the engine thread only looks references up.
The book is bounded (least recently used ones go; the default stays) and guarded by a lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from .reference import Reference, ReferenceError, check_clip, clip_digest
from .sovits import SovitsV2

Maker = Callable[[Path, str, str, SovitsV2], Reference]


class ReferenceBook:
    def __init__(self, maker: Maker | None, sovits: SovitsV2, max_entries: int = 32) -> None:
        self._maker = maker
        self._sovits = sovits  # prompt tokens and style come from this model
        self._max = max(1, max_entries)
        self._refs: OrderedDict[str, Reference] = OrderedDict()
        self._default: Reference | None = None
        self._default_source: tuple[Path, str, str] | None = None
        self._lock = threading.Lock()

    def for_model(self, sovits: SovitsV2) -> ReferenceBook:
        """A book for other SoVITS weights: the default reference made again with them (slow: off
        the event loop); others are made again when requests bring them."""
        book = ReferenceBook(self._maker, sovits, self._max)
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

    def prepare(self, path: str | Path, prompt_text: str, prompt_lang: str) -> Reference:
        """The reference for this clip and transcript, made now if it is new (slow: call it off
        the event loop)."""
        if self._maker is None:
            raise ReferenceError("this voice cannot make references (no HuBERT directory configured: hubert_dir)")
        path = Path(path)
        check_clip(path)  # before the file is hashed: its size, that it is audio, its length
        ref_id = clip_digest(path, prompt_text, prompt_lang)
        with self._lock:
            known = self._refs.get(ref_id)
            if known is not None:
                self._refs.move_to_end(ref_id)
                return known
        reference = self._maker(path, prompt_text, prompt_lang, self._sovits)
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
