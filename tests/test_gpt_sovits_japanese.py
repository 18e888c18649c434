"""Japanese G2P against upstream GPT-SoVITS ``clean_text(text, "ja", "v2")`` (fixtures made by
running upstream's own code: tests/fixtures/gpt_sovits_ja/README.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pyopenjtalk = pytest.importorskip("pyopenjtalk")

from stream_server.models.gpt_sovits.frontend import japanese  # noqa: E402
from stream_server.models.gpt_sovits.frontend.symbols import to_ids  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "gpt_sovits_ja"


def _cases(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def results() -> list[tuple[dict, list[str], str]]:
    """Each fixture case with our (phones, norm_text), computed once for the tests below."""
    g = japanese.load()
    return [(case, *japanese.g2p(case["text"], g)) for case in _cases("cases.json")]


def test_every_fixture_sentence_matches_upstream(results: list[tuple[dict, list[str], str]]) -> None:
    assert len(results) > 500
    wrong = [(c["text"], phones, c["phones"], norm) for c, phones, norm in results
             if (phones, norm) != (c["phones"], c["norm_text"])]
    assert wrong == []


def test_every_phone_has_a_v2_id(results: list[tuple[dict, list[str], str]]) -> None:
    for _, phones, _ in results:
        assert len(to_ids(phones)) == len(phones)
    assert "UNK" in {p for _, phones, _ in results for p in phones}  # upstream's "#" and 「 etc.


def test_normalize_collapses_only_the_model_punctuation() -> None:
    assert japanese.normalize("えっ!?…。。--") == "えっ!。。-"
    assert japanese.normalize("a,.b") == "a,b"


@pytest.fixture
def user_dict_g2p(tmp_path: Path) -> Iterator[tuple[japanese.JapaneseG2P, dict]]:
    data = json.loads((FIXTURES / "userdict_cases.json").read_text(encoding="utf-8"))
    csv = tmp_path / "userdict.csv"
    csv.write_text(data["userdict_csv"], encoding="utf-8")
    try:
        yield japanese.load(csv, cache_dir=tmp_path / "cache"), data
    finally:
        pyopenjtalk.unset_user_dict()  # the user dictionary is process-global


def test_user_dictionary_compiled_once_and_applied(
    user_dict_g2p: tuple[japanese.JapaneseG2P, dict], tmp_path: Path
) -> None:
    g, data = user_dict_g2p
    assert g.user_dict is not None and g.user_dict.parent == tmp_path / "cache"
    assert japanese.compile_user_dict(tmp_path / "userdict.csv", tmp_path / "cache") == g.user_dict
    assert data["cases"]
    for case in data["cases"]:
        assert japanese.g2p(case["text"], g) == (case["phones"], case["norm_text"])
