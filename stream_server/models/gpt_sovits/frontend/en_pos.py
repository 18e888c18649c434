"""Part-of-speech tags for choosing an English homograph's reading (upstream: ``nltk.pos_tag``).

Upstream tags each sentence's tokens with NLTK's averaged perceptron tagger, whose model NLTK
downloads at run time (never here). Two ways to tag instead:

* When the PyPI package ``textblob-aptagger`` is installed, its averaged-perceptron model
  (``trontagger-0.1.0.pickle``: weights, tag dictionary, classes) is run by NLTK's own
  ``PerceptronTagger``, the same algorithm as upstream's (NLTK's own model may have been trained
  apart: tags can differ in places). The package itself is never imported
  (it needs textblob): its file is located with importlib and unpickled with only the builtin
  ``set`` allowed. Our fixtures were made with upstream under this model
  (tests/fixtures/gpt_sovits_en/README.md).
* Otherwise ``guess_tag``: a context rule on the previous token, good for the common cases
  ("to read", "I read", "was used") and imperatives at the start of a sentence.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import pickle
from collections.abc import Callable
from pathlib import Path

Tagger = Callable[[list[str]], list[str]]

_MODEL_FILE = "trontagger-0.1.0.pickle"

_VERB_CUES = {
    "i", "you", "we", "they", "he", "she", "it", "to", "will", "would", "shall", "should", "can",
    "could", "may", "might", "must", "do", "does", "did", "don't", "doesn't", "didn't", "won't",
    "wouldn't", "can't", "cannot", "couldn't", "shouldn't", "let's", "please", "not", "never",
}
_PRESENT_CUES = {"i", "you", "we", "they", "to", "will", "would", "shall", "should", "can",
                 "could", "may", "might", "must", "do", "don't", "please", "let's"}
_PARTICIPLE_CUES = {"is", "was", "were", "are", "am", "be", "been", "being", "get", "gets",
                    "got", "has", "have", "had", "i've", "you've", "we've", "they've", "he's",
                    "she's", "it's", "i'd", "you'd", "he'd", "she'd", "we'd", "they'd"}
_SENTENCE_END = {".", "!", "?", "…"}


def guess_tag(word: str, prev: str | None, next_is_word: bool) -> str:
    """A Penn-style tag good enough to choose a homograph's reading (lower-case ``word``)."""
    if word == "used":
        return "VBN" if prev in _PARTICIPLE_CUES else "VBD"
    if word == "read":
        return "VBP" if prev is None or prev in _PRESENT_CUES else "VBD"
    if word == "complex":
        return "JJ" if next_is_word else "NN"
    # a sentence's first word is most often an imperative verb ("Use the...", "Separate them")
    return "VB" if prev is None or prev in _SENTENCE_END or prev in _VERB_CUES else "NN"


def guess_tags(tokens: list[str]) -> list[str]:
    """``guess_tag`` for every token (tags of non-homographs are never used)."""
    low = [t.lower() for t in tokens]
    return [
        guess_tag(w, low[i - 1] if i else None,
                  i + 1 < len(low) and any(c.isalpha() and c.isascii() for c in low[i + 1]))
        for i, w in enumerate(low)
    ]


class _SetsOnly(pickle.Unpickler):
    """The model is dicts, strings, floats and sets: refuse anything else a pickle could name."""

    def find_class(self, module: str, name: str) -> type:
        if (module, name) in {("__builtin__", "set"), ("builtins", "set")}:
            return set
        raise pickle.UnpicklingError(f"unexpected object in the tagger model: {module}.{name}")


def _model_path() -> Path | None:
    spec = importlib.util.find_spec("textblob_aptagger")  # locate only: importing needs textblob
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _MODEL_FILE
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def load_perceptron() -> Tagger | None:
    """NLTK's perceptron tagger with textblob-aptagger's model, or None when not installed."""
    path = _model_path()
    if path is None:
        return None
    from nltk.tag.perceptron import PerceptronTagger

    weights, tagdict, classes = _SetsOnly(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    tagger = PerceptronTagger(load=False)
    tagger.model.weights, tagger.tagdict = weights, tagdict
    tagger.classes = tagger.model.classes = set(classes)
    return lambda tokens: [tag for _, tag in tagger.tag(tokens)]
