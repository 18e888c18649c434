"""What a sentence will cost the engine, estimated before it gets there (docs/limits.md, "Expensive
text").

A sentence's text is bounded in characters (`session.hard_sentence_chars`), but what the engine
does with it scales with its phonemes and frames, and some text expands far beyond its length:
"1e999999 " is 9 characters and some 35 phonemes, long numbers, dates, ordinals, emoji sequences
and scripts the voice's espeak-ng voice spells out letter by letter do the same. 400 such
characters were 1,500 phonemes and 80 s of audio for one sentence: seconds of the engine's time
before the AR voice's static cache refused it (its ArConfig.max_steps steps of 3 frames), stalling
every other session's first audio and leaving the measured RTF at 3-17 (admission then refused
everyone).

So each sentence is phonemized once more, on the loop, by the voice's espeak-ng voice (about a
millisecond for 400 characters; a voice without one, GPT-SoVITS, counts its characters), and its
audio estimated from that at its speed. A sentence of more than `session.max_sentence_phonemes`
phonemes, or of more audio than its voice holds in one sentence (ModelBackend.max_sentence_frames),
never reaches the engine: it is refused with `sentence_too_expensive` and a message that says how
much it would be and what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..text.phonemizer import espeak_phoneme_count
from .events import SessionError

log = logging.getLogger(__name__)

SENTENCE_TOO_EXPENSIVE = "sentence_too_expensive"
# Audio per phoneme at speed 1 (length_scale 1), on the high side of what the voices' durations
# give (joe's: 4.3 frames of 11.6 ms a phoneme on average over the held-out sentences, at most 5.1),
# so a sentence estimated within its voice's bound fits that bound.
SECONDS_PER_PHONEME = 0.06


@dataclass(frozen=True)
class VoiceCost:
    """What the estimate needs of a voice: the espeak-ng voice that phonemizes its text (None:
    its characters are counted instead) and the most audio one sentence may have (None: no bound)."""

    espeak_voice: str | None = None
    max_seconds: float | None = None


@dataclass(frozen=True)
class SentenceCost:
    phonemes: int
    seconds: float  # estimated audio, at the sentence's speed


def estimate(spoken: str, voice: VoiceCost, length_scale: float) -> SentenceCost:
    phonemes = len(spoken)
    if voice.espeak_voice is not None:
        try:
            phonemes = espeak_phoneme_count(spoken, voice.espeak_voice)
        except RuntimeError:  # the bridge's own failure: the characters are the estimate
            log.warning("espeak-ng could not phonemize a sentence for its cost; counting its characters")
    return SentenceCost(phonemes, phonemes * SECONDS_PER_PHONEME * length_scale)


def refusal(cost: SentenceCost, voice: VoiceCost, max_phonemes: int) -> SessionError | None:
    """SessionError `sentence_too_expensive` for a sentence past a bound, else None."""
    if cost.phonemes > max_phonemes:
        why = f"{cost.phonemes} phonemes, more than the limit of {max_phonemes} (session.max_sentence_phonemes)"
    elif voice.max_seconds is not None and cost.seconds > voice.max_seconds:
        why = (f"about {cost.seconds:.0f} s of audio at this speed ({cost.phonemes} phonemes), more than "
               f"the {voice.max_seconds:.0f} s its voice holds in one sentence")
    else:
        return None
    return SessionError(
        SENTENCE_TOO_EXPENSIVE,
        f"a sentence was not spoken: it expands to {why}; long numbers, dates, symbols and spelled-out "
        "text expand most. Send it in shorter sentences (or faster)",
    )
