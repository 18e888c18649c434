"""The spoken form: every rule merges only texts the voice speaks identically.

Evidence is taken from the voice's own phonemizer (espeak-ng through piper-tts): the phonemes
decide the audio (with the seed, which comes from the spoken form). Where espeak reads two
spellings differently they must keep different spoken forms, whatever a generic normaliser
would do; and the spoken form of a text must be read like the text itself, except where the raw
spelling is unreadable to espeak (fullwidth letters, decomposed accents), which it repairs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_server.models.piper_vits.piper_voice import SynthesisParams
from stream_server.text.spoken_form import spoken_form, spoken_seed

# Same spoken form, and the same phonemes as written.
EQUIVALENT = [
    ("Hello   there.", "Hello there."),
    ("Hello\tthere.", "Hello there."),
    ("Hello\nthere.", "Hello there."),
    ("Hello there. ", "Hello there."),
    ("  Hello there.", "Hello there."),
    ("Hello\u00a0there.", "Hello there."),  # no-break space
    ("Hello\u2003there.", "Hello there."),  # em space
    ("Hello\u3000there.", "Hello there."),  # ideographic space
    ("He said \u201cyes\u201d loudly.", 'He said "yes" loudly.'),
    ("He said \u201eyes\u201c loudly.", 'He said "yes" loudly.'),
    ("He said \u00abyes\u00bb loudly.", 'He said "yes" loudly.'),
    ("He said \u2018yes\u2019 loudly.", "He said 'yes' loudly."),
    ("He said \u2039yes\u203a loudly.", "He said 'yes' loudly."),
    ("I don\u2019t know.", "I don't know."),
    ("Rock \u2019n\u2019 roll.", "Rock 'n' roll."),
    ("It was good \u2013 really good.", "It was good \u2014 really good."),  # en / em dash
    ("A well\u2013known fact.", "A well\u2014known fact."),
    ("From 1990\u20132000.", "From 1990\u20142000."),
    ("The \ufb01le is here.", "The file is here."),  # ligature
    ("Wait\u2026 what?", "Wait... what?"),
    ("Hello\ufe56", "Hello?"),  # small question mark
]

# Same spoken form; the raw spelling is read badly by espeak, the spoken form repairs it.
REPAIRED = [
    ("\uff28\uff45\uff4c\uff4c\uff4f there.", "Hello there."),  # fullwidth: spelled out as codes
    ("It is \uff12\uff10\uff12\uff14 now.", "It is 2024 now."),  # fullwidth digits: dropped
    ("\U0001d407ello there.", "Hello there."),  # mathematical bold H
    ("cafe\u0301.", "caf\u00e9."),  # decomposed accent: read "cafe" without it
]

# Read differently by espeak, so they must never share a spoken form (nor a cache key).
DIFFERENT = [
    ("The US army is here.", "The us army is here."),
    ("IT is great.", "It is great."),
    ("Polish the Polish silver.", "polish the polish silver."),
    ("Hello there.", "Hello there?"),
    ("Hello there!", "Hello there."),
    ("Hello, there.", "Hello there."),
    ("A well-known fact.", "A well\u2013known fact."),  # hyphen vs en dash
    ("It was good - really good.", "It was good \u2014 really good."),
    ("A well\u2010known fact.", "A well-known fact."),  # U+2010 hyphen
    ("It is 5 \u2212 3.", "It is 5 - 3."),  # minus sign says "minus"
    ("It was good \u2015 really good.", "It was good \u2014 really good."),  # horizontal bar
    ("Take \u00bd cup.", "Take 1\u20442 cup."),  # NFKC of one half
    ("It is \u2460 now.", "It is 1 now."),  # NFKC of circled one
    ("Room \u2116 5.", "Room No 5."),  # NFKC of numero sign
    ("It costs 5\u2122.", "It costs 5TM."),  # NFKC of trade mark
    ("It is 5 \u00b5m.", "It is 5 \u03bcm."),  # micro sign vs Greek mu
]


@pytest.fixture(scope="module")
def phonemes(piper):
    return lambda text: "".join(piper.phonemizer.phonemes(text))


@pytest.mark.parametrize("a, b", EQUIVALENT)
def test_equivalent_spellings_share_a_spoken_form_and_are_read_alike(a, b, phonemes):
    assert spoken_form(a) == spoken_form(b)
    assert phonemes(a) == phonemes(b)
    assert phonemes(spoken_form(a)) == phonemes(a)  # synthesizing the spoken form changes nothing


@pytest.mark.parametrize("raw, clean", REPAIRED)
def test_unreadable_spellings_are_repaired(raw, clean, phonemes):
    assert spoken_form(raw) == spoken_form(clean)
    assert phonemes(raw) != phonemes(clean)  # why the repair matters
    assert phonemes(spoken_form(raw)) == phonemes(clean)


@pytest.mark.parametrize("a, b", DIFFERENT)
def test_spellings_read_differently_keep_different_spoken_forms(a, b, phonemes):
    assert phonemes(a) != phonemes(b)
    assert spoken_form(a) != spoken_form(b)
    assert spoken_seed(a) != spoken_seed(b)


@pytest.mark.slow
def test_case_changes_the_audio_so_it_stays_in_the_key(piper):
    """Synthesized, not just phonemized: 'US' and 'us' are different audio."""
    def synth(text):
        return piper.synthesize(spoken_form(text), SynthesisParams(seed=spoken_seed(text)))

    upper, lower = synth("The US army is here."), synth("The us army is here.")
    n = min(len(upper), len(lower))
    assert len(upper) != len(lower) or np.abs(upper[:n] - lower[:n]).max() > 0.1
    assert spoken_form("The US army is here.") != spoken_form("The us army is here.")


@pytest.mark.slow
def test_equivalent_texts_give_identical_audio(piper):
    """What the cache relies on: same spoken form -> same engine input and seed -> same audio."""
    def synth(text):
        return piper.synthesize(spoken_form(text), SynthesisParams(seed=spoken_seed(text)))

    a, b = synth("He said \u201cyes\u201d  to it. "), synth('He said "yes" to it.')
    assert np.array_equal(a, b)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_spoken_form_is_idempotent(text):
    once = spoken_form(text)
    assert spoken_form(once) == once
    assert once == once.strip()
