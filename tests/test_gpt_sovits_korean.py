"""Korean G2P (frontend/korean.py) against upstream GPT-SoVITS's own output.

tests/fixtures/gpt_sovits_ko/cases.json holds upstream ``clean_text(text, "ko", "v2")`` (phones,
normalized text) for 547 inputs (README.md there says how it was made). Every case must match.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from stream_server.models.gpt_sovits.frontend import korean
from stream_server.models.gpt_sovits.frontend.symbols import KO_SYMBOLS, to_ids

FIXTURE = Path(__file__).parent / "fixtures" / "gpt_sovits_ko" / "cases.json"
CASES: list[dict[str, str]] = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="module")
def g2p() -> korean.KoreanG2P:
    return korean.load()


def test_fixture_is_the_expected_one() -> None:
    assert len(CASES) == 547
    assert not [c for c in CASES if "error" in c]  # upstream raised on none of them


def test_every_case_matches_upstream(g2p: korean.KoreanG2P) -> None:
    mismatches = []
    for case in CASES:
        phones, norm = korean.g2p(case["text"], g2p)
        if (" ".join(phones), norm) != (case["phones"], case["norm_text"]):
            mismatches.append((case["text"], case["phones"], " ".join(phones)))
    assert not mismatches, f"{len(mismatches)} of {len(CASES)} differ, e.g. {mismatches[:3]}"


def test_every_phone_has_a_v2_id(g2p: korean.KoreanG2P) -> None:
    phones = {p for case in CASES for p in case["phones"].split()}
    assert len(to_ids(sorted(phones))) == len(phones)
    assert set(KO_SYMBOLS) <= phones  # the inputs reach every Korean symbol, 空 and 停 included
    ours, _ = korean.g2p("ㄳ 값 abc ſK 😀.", g2p)
    assert to_ids(ours)


@pytest.mark.parametrize(
    ("text", "phones"),
    [
        ("A", "ㅇ ㅔ ㅇ ㅣ ."),  # a letter -> its name; a trailing jamo gets a full stop
        ("좋을 리가", "ㅈ ㅗ ㅇ ㅡ ㄹ 空 ㄴ ㅣ ㄱ ㅏ ."),  # -을 + ㄹ -> ㄴ (g2pk2's gap, fixed)
        ("의", "ㅇ ㅡ ㅣ ."),  # compound vowel split in two (ㅇ: the silent onset)
        ("안녕，세상。", "ㅇ ㅏ ㄴ ㄴ ㅣ ㅓ ㅇ , ㅅ ㅔ ㅅ ㅏ ㅇ ."),  # full-width punctuation
        ("", ""),
    ],
)
def test_pipeline_steps(g2p: korean.KoreanG2P, text: str, phones: str) -> None:
    assert korean.g2p(text, g2p) == (phones.split(), text)


def test_threads_share_one_instance(g2p: korean.KoreanG2P) -> None:
    texts = [c["text"] for c in CASES[:40]]
    want = [korean.g2p(t, g2p) for t in texts]
    got: list[list[tuple[list[str], str]]] = []

    def run() -> None:
        got.append([korean.g2p(t, g2p) for t in texts])

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [want] * 4
