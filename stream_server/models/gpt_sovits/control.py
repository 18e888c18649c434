"""What api_v2 changes on a running GPT-SoVITS voice, behind the engine contract's VoiceControl
(engine/backend.py): its text split methods and languages, reference clips, and weights. The
server's api_v2 adapter reaches the voice only through this."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .frontend import METHODS, SUPPORTED_LANGUAGES

if TYPE_CHECKING:
    from .backend import GptSovitsBackend

REFERENCE_OPTION = "ref"  # SynthesisOptions.extra: a request's own reference (its id in the ReferenceBook)
LANGUAGE_OPTION = "lang"  # SynthesisOptions.extra: the language of a request's text


class GptSovitsControl:
    text_languages = SUPPORTED_LANGUAGES
    split_methods = METHODS
    weight_parts = ("gpt", "sovits")

    def __init__(self, backend: GptSovitsBackend) -> None:
        self._backend = backend

    @property
    def version(self) -> str:
        """The SoVITS file's version (v2, v2Pro, v2ProPlus): api_v2's messages name it."""
        return self._backend.sovits.cfg.version

    def split(self, text: str, method: str, language: str) -> list[str]:
        return self._backend.frontend.split(text, method, language)

    def normalized_lengths(self, pieces: Sequence[str], language: str) -> list[int]:
        # the engine computes each piece's BERT features when it speaks it: not here as well
        return [len(self._backend.frontend.phones(piece, language, bert=False).norm_text) for piece in pieces]

    def prepare_reference(
        self, path: str, prompt_text: str, prompt_language: str, aux_paths: Sequence[str] = ()
    ) -> str:
        return self._backend.references.prepare(path, prompt_text, prompt_language, aux_paths).ref_id

    def set_default_reference(self, path: str, prompt_text: str, prompt_language: str) -> None:
        self._backend.references.set_default(path, prompt_text, prompt_language)

    def request_options(self, reference: str, language: str) -> tuple[tuple[str, str], ...]:
        return ((LANGUAGE_OPTION, language), (REFERENCE_OPTION, reference))

    def load_weights(self, part: str, path: Path) -> Callable[[], None]:
        """A file a client named: whatever fails in loading it is the file's fault (ValueError),
        never the server's."""
        backend = self._backend
        try:
            if part == "gpt":
                model = backend.load_t2s(path)
                return lambda: backend.use_t2s(model, path)
            if part == "sovits":
                loaded = backend.load_sovits(path)
                return lambda: backend.use_sovits(loaded, path)
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a checkpoint whose config builds no model
            raise ValueError(f"{path}: cannot be loaded as the voice's {part} weights") from exc
        raise ValueError(f"no weights called {part!r}: {', '.join(self.weight_parts)}")
