"""Word timings without a server: phoneme groups from durations, mapping onto the text's words,
and their trip through the sentence cache's entry format and replay."""

from __future__ import annotations

import numpy as np

from stream_server.cache.codec import CachedSentence, decode_entry, encode_entry
from stream_server.cache.source import replay_events
from stream_server.engine.requests import AudioEvent, TimingEvent
from stream_server.engine.chunking import ChunkConfig
from stream_server.server.session import text_words, word_timestamps
from stream_server.text.phonemizer import Phonemizer

ID_MAP = {"^": [1], "$": [2], "_": [0], " ": [3], "a": [4], "b": [5], ",": [6], ".": [7]}


def test_phoneme_groups_split_at_word_gaps_and_skip_pads_and_punctuation():
    ph = Phonemizer(ID_MAP)
    ids = ph.ids_from_phonemes(["a", "b", ",", " ", "b", "."])  # ^ _ a _ b _ , _ ␣ _ b _ . _ $
    assert ids == [1, 0, 4, 0, 5, 0, 6, 0, 3, 0, 5, 0, 7, 0, 2]
    durations = [0, 2, 3, 1, 4, 1, 5, 2, 3, 1, 6, 1, 4, 0, 0]
    # "ab,": a starts after ^ and the pad (frame 2), b ends at 2+3+1+4 = 10; the comma is not in it
    # "b.": starts at 10+1+5+2+3+1 = 22, ends at 28
    assert ph.word_frames(ids, durations) == [(2, 10), (22, 28)]


def test_text_words_strip_punctuation():
    assert text_words('"Hello, there!" — said Dr. O\'Neil...') == ["Hello", "there", "said", "Dr", "O'Neil"]


def test_word_timestamps_one_to_one_and_fallback():
    fs = 256 / 22050
    timing = TimingEvent(7, [(2, 10), (22, 28)], fs, 30)
    got = word_timestamps("Hi, you.", timing, offset=1.5)
    assert [w["word"] for w in got] == ["Hi", "you"]
    assert got[0]["start"] == round(1.5 + 2 * fs, 4) and got[1]["end"] == round(1.5 + 28 * fs, 4)
    # "42" is spoken as two words: three groups for two text words -> proportional to characters
    timing = TimingEvent(7, [(2, 10), (12, 20), (22, 30)], fs, 32)
    got = word_timestamps("Owls 42.", timing)
    assert [w["word"] for w in got] == ["Owls", "42"]
    assert got[0]["start"] == round(2 * fs, 4) and got[-1]["end"] == round(30 * fs, 4)
    assert got[0]["end"] == got[1]["start"] == round((2 + 28 * 4 / 6) * fs, 4)
    assert word_timestamps("...", timing) == []


def test_cache_entry_keeps_timings_and_replays_them_first():
    pcm = np.linspace(-0.5, 0.5, 40 * 256, dtype=np.float32)
    entry = CachedSentence("hi you", "m", 22050, 256, pcm, [(2, 10), (22, 28)])
    back = decode_entry(encode_entry(entry))
    assert back.word_timings == [(2, 10), (22, 28)]
    events = list(replay_events(back, ChunkConfig(18, 64, 11, 11), request_id=3))
    timing, *audio = events
    assert isinstance(timing, TimingEvent) and timing.word_frames == [(2, 10), (22, 28)]
    assert timing.frame_seconds == 256 / 22050 and timing.num_frames == 40 and not timing.last
    assert all(isinstance(e, AudioEvent) for e in audio) and audio[-1].last
    # an entry without timings replays audio only
    plain = CachedSentence("hi you", "m", 22050, 256, pcm)
    assert all(isinstance(e, AudioEvent) for e in replay_events(plain, ChunkConfig(18, 64, 11, 11)))
