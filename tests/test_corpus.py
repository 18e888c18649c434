"""The distillation corpus: reproducible, varied enough to teach the voice, and disjoint from the
held-out sentences the distilled voice is judged on."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys

import pytest

from stream_server.train import corpus_words as W
from stream_server.train.corpus import (
    TEMPLATES,
    _article,
    _expand,
    _plural,
    heldout_sentences,
    ordinal,
    sentence_key,
    training_sentences,
)

N = 6000


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return training_sentences(N, seed=0)


def _share(items: list[str], test) -> float:
    return sum(1 for s in items if test(s)) / len(items)


_NAMES = set(W.FIRST_NAMES) | set(W.SURNAMES) | {
    w for place in W.CITIES + W.COUNTRIES for w in place.split() if w[0].isupper()}


def _names_mid_sentence(text: str) -> bool:
    words = (w.strip(".,!?;:'\"").removesuffix("'s") for w in text.split()[1:])
    return any(w in _NAMES for w in words)


def test_same_list_every_call(sentences):
    assert training_sentences(N, seed=0) == sentences
    assert training_sentences(N, seed=1) != sentences


def test_same_list_in_another_process(sentences):
    """No dependence on hash randomization: a fresh interpreter with another hash seed agrees."""
    code = "from stream_server.train.corpus import training_sentences as t; print('\\n'.join(t(500)))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == training_sentences(500)


def test_count_and_uniqueness(sentences):
    assert len(sentences) == N
    assert len({sentence_key(s) for s in sentences}) == N
    assert training_sentences(25, seed=3) == training_sentences(25, seed=3)
    assert len(training_sentences(25, seed=3)) == 25
    assert training_sentences(0) == []


def test_diversity(sentences):
    assert _share(sentences, lambda s: s.endswith("?")) >= 0.20
    assert _share(sentences, lambda s: re.search(r"\d", s) is not None) >= 0.20
    assert _share(sentences, _names_mid_sentence) >= 0.15
    assert _share(sentences, lambda s: 6 <= len(s.split()) <= 20) >= 0.6
    assert _share(sentences, lambda s: len(s.split()) <= 4) >= 0.01  # "Watch out!"
    assert _share(sentences, lambda s: len(s.split()) >= 21) >= 0.03  # long compound sentences
    words = {w.strip(".,!?;:'\"").lower() for s in sentences for w in s.split()}
    assert len({w for w in words if w.isalpha()}) >= 2500
    assert len(set(TEMPLATES)) >= 60


def test_shape(sentences):
    for s in sentences:
        assert 1 <= len(s.split()) <= 40, s
        assert s[0].isupper() or s[0] in "0123456789$£€", s
        assert s[-1] in ".!?", s
        assert "{" not in s and "}" not in s and "  " not in s, s
        assert " ," not in s and ".." not in s, s


def test_every_template_expands():
    r = random.Random(0)
    for template in TEMPLATES:
        for _ in range(5):
            assert "{" not in _expand(template, r), template


def test_english_details():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    assert [_article(w) for w in ("apple", "hour", "uniform", "lantern", "8", "11 days", "80%")] == [
        "an apple", "an hour", "a uniform", "a lantern", "an 8", "an 11 days", "an 80%"]
    assert [_plural(w) for w in ("fishing rod", "knife", "box", "strawberry", "fisherman", "key")] == [
        "fishing rods", "knives", "boxes", "strawberries", "fishermen", "keys"]


def test_heldout_sentences():
    held = heldout_sentences()
    assert len(held) >= 40
    assert len({sentence_key(s) for s in held}) == len(held)
    assert all(not s.startswith("#") and s.strip() == s and s for s in held)
    assert _share(held, lambda s: s.endswith("?")) >= 0.15
    assert _share(held, lambda s: re.search(r"\d", s) is not None) >= 0.15


def test_no_heldout_sentence_in_training(sentences):
    held = {sentence_key(s) for s in heldout_sentences()}
    assert not held & {sentence_key(s) for s in sentences}
