"""Cantonese G2P against upstream GPT-SoVITS (tests/fixtures/gpt_sovits_yue, see its README)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("ToJyutping")

from stream_server.models.gpt_sovits.frontend import cantonese  # noqa: E402
from stream_server.models.gpt_sovits.frontend.symbols import SYMBOL_TO_ID, to_ids  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "gpt_sovits_yue"
CASES = json.loads((FIXTURES / "cases.json").read_text(encoding="utf-8"))["cases"]
SYLLABLES: dict[str, list[str]] = json.loads((FIXTURES / "syllables.json").read_text(encoding="utf-8"))

# With the OpenCC fallback (no zh-normalization package), rare characters whose traditional ->
# simplified conversion differs from upstream's table (README "Result").
KNOWN_DIFFERENT = {"磝叧尡掗余熛洧礥曁", "縼炥怳烑鏣狍謮峤敤锝", "栢椅蹫鎐呇", "睂潙蛠锫蓻綰忁劙鉋宷"}
# Upstream raises on a character ToJyutping cannot read; we drop that character.
UPSTREAM_FAILS = {"艹", "佢講咗句艹字。"}


@pytest.fixture(scope="module")
def g() -> cantonese.CantoneseG2P:
    return cantonese.load()


@pytest.fixture(scope="module")
def g_opencc(g: cantonese.CantoneseG2P) -> cantonese.CantoneseG2P:
    return dataclasses.replace(g, t2s=cantonese.opencc_t2s(), exact_t2s=False)


def _different(g: cantonese.CantoneseG2P) -> set[str]:
    return {c["text"] for c in CASES
            if "error" not in c and cantonese.g2p(c["text"], g) != (c["phones"], c["norm_text"])}


def test_matches_upstream_clean_text_with_opencc_fallback(g_opencc: cantonese.CantoneseG2P) -> None:
    assert _different(g_opencc) == KNOWN_DIFFERENT
    assert len(CASES) - len(KNOWN_DIFFERENT) - len(UPSTREAM_FAILS) >= 500


def test_matches_upstream_clean_text_with_upstream_table(g: cantonese.CantoneseG2P) -> None:
    if not g.exact_t2s:
        pytest.skip("zh-normalization (upstream's t2s table) is not installed")
    assert _different(g) == set()


def test_known_differences_are_only_in_the_text_conversion(g_opencc: cantonese.CantoneseG2P) -> None:
    for case in CASES:
        if case["text"] in KNOWN_DIFFERENT:
            phones, norm = cantonese.g2p(case["text"], g_opencc)
            assert len(norm) == len(case["norm_text"]) and norm != case["norm_text"]


def test_syllable_cut_matches_upstream_for_every_reading() -> None:
    ours = {s: [p if p in SYMBOL_TO_ID else "UNK" for p in cantonese.syllable_phones(s)]
            for s in SYLLABLES}
    assert ours == SYLLABLES


def test_every_phone_has_a_v2_id(g: cantonese.CantoneseG2P) -> None:
    for case in CASES:
        phones, _ = cantonese.g2p(case["text"], g)
        assert len(to_ids(phones)) == len(phones)


def test_unreadable_character_is_dropped_where_upstream_fails(g: cantonese.CantoneseG2P) -> None:
    assert {c["text"] for c in CASES if "error" in c} == UPSTREAM_FAILS
    assert cantonese.g2p("艹", g) == ([], "")
    assert cantonese.g2p("佢講咗句艹字。", g) == cantonese.g2p("佢講咗句字。", g)


def test_norm_text_has_two_phones_per_hanzi(g: cantonese.CantoneseG2P) -> None:
    phones, norm = cantonese.g2p("佢哋喺度食緊嘢，冇問題！", g)
    assert norm == "佢哋喺度食紧嘢,冇问题!"
    assert len(phones) == 2 * 10 + 2
