"""Word timings without a server (docs/protocol.md, "Word timestamps"): spoken word groups from
phoneme durations, their mapping onto the words a client wrote, and their trip through the
sentence cache's entry format and replay."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from piper.phoneme_ids import phonemes_to_ids

from stream_server.cache.codec import CachedSentence, EntryCodec
from stream_server.cache.source import replay_events
from stream_server.engine.chunking import ChunkConfig
from stream_server.engine.requests import AudioEvent, TimingEvent
from stream_server.server.word_times import word_timestamps
from stream_server.text.phonemizer import Phonemizer
from stream_server.text.words import text_words

ID_MAP = {"^": [1], "$": [2], "_": [0], " ": [3], "a": [4], "b": [5], ",": [6], ".": [7]}
FRAME_S = 256 / 22050  # one frame of a 22050 Hz voice with hop 256


def frames_read_off_the_track(id_map: dict, ids: list[int], durations: list[int]) -> list[tuple[int, int]]:
    """The spoken words, read off a frame-by-frame track instead of accumulating durations:
    every phoneme is stamped with the number of word gaps before it (a gap splits words however
    short its pause), then each frame gets its phoneme's word number and whether it sounds (a
    letter or a mark: not a pad, BOS/EOS, gap or punctuation). A word spans its first to last
    sounding frame."""
    symbol = {i: s for s, ids_of in id_map.items() for i in ids_of}
    gap = np.array([symbol[i] == " " for i in ids])
    sounds = np.array([symbol[i] != " " and any(unicodedata.category(c)[0] in "LM" for c in symbol[i]) for i in ids])
    word_of_frame = np.repeat(np.cumsum(gap), durations)
    sounding_frame = np.repeat(sounds, durations)
    spans = []
    for word in np.unique(word_of_frame[sounding_frame]):
        frames = np.flatnonzero(sounding_frame & (word_of_frame == word))
        spans.append((int(frames[0]), int(frames[-1]) + 1))
    return spans


def assert_timeline(words: list[dict], begin: float, end: float) -> None:
    """Every word lasts a while, inside [begin, end], and words come in order without overlap."""
    for w in words:
        assert begin <= w["start"] < w["end"] <= end, (w, begin, end)
    for a, b in zip(words, words[1:]):
        assert a["end"] <= b["start"], (a, b)


# --- phoneme ids and spoken word groups -------------------------------------------------------
def test_phoneme_groups_split_at_word_gaps_and_skip_pads_and_punctuation():
    ph = Phonemizer(ID_MAP)
    phonemes = ["a", "b", ",", " ", "b", "."]
    ids = ph.ids_from_phonemes(phonemes)  # ^ _ a _ b _ , _ ␣ _ b _ . _ $
    assert ids == [1, 0, 4, 0, 5, 0, 6, 0, 3, 0, 5, 0, 7, 0, 2]
    assert ids == phonemes_to_ids(phonemes, ID_MAP)  # Piper's own convention, which the voice was trained on
    durations = [0, 2, 3, 1, 4, 1, 5, 2, 3, 1, 6, 1, 4, 0, 0]
    # "ab,": a starts after ^ and the pad (frame 2), b ends at 2+3+1+4 = 10; the comma is not in it
    # "b.": starts at 10+1+5+2+3+1 = 22, ends at 28
    assert ph.word_frames(ids, durations) == [(2, 10), (22, 28)]
    assert frames_read_off_the_track(ID_MAP, ids, durations) == [(2, 10), (22, 28)]


@given(st.data())
def test_word_groups_match_the_frame_track(data):
    ph = Phonemizer(ID_MAP)
    phonemes = data.draw(st.lists(st.sampled_from(["a", "b", ",", ".", " "]), min_size=1, max_size=24))
    ids = ph.ids_from_phonemes(phonemes)
    letter = {i for s in "ab" for i in ID_MAP[s]}
    # a sounding phoneme lasts at least a frame (the voice rounds its durations up); pauses may be 0
    durations = [data.draw(st.integers(1 if i in letter else 0, 6)) for i in ids]
    got = ph.word_frames(ids, durations)
    assert got == frames_read_off_the_track(ID_MAP, ids, durations)
    spoken_words = [w for w in "".join(phonemes).split(" ") if any(c in "ab" for c in w)]
    assert len(got) == len(spoken_words)
    for (a, b), (c, _) in zip(got, got[1:]):
        assert a < b <= c
    assert all(0 <= a < b <= sum(durations) for a, b in got)


# --- words as the client wrote them -----------------------------------------------------------
def test_text_words_strip_punctuation():
    assert text_words('"Hello, there!" — said Dr. O\'Neil...') == ["Hello", "there", "said", "Dr", "O'Neil"]


def test_word_timestamps_one_to_one_and_fallback():
    timing = TimingEvent(7, [(2, 10), (22, 28)], FRAME_S, 30)
    got = word_timestamps("Hi, you.", timing, offset=1.5)
    # one group per word: its frames in seconds after the offset (frame 2 = sample 512 = 23.2 ms,
    # frame 10 = sample 2560 = 116.1 ms, frame 22 = 255.4 ms, frame 28 = 325.1 ms)
    assert got == [
        {"word": "Hi", "start": 1.5232, "end": 1.6161},
        {"word": "you", "start": 1.7554, "end": 1.8251},
    ]
    assert_timeline(got, 1.5, 1.5 + 30 * FRAME_S)
    # "42" is spoken as two words: three groups for two text words -> the voiced span (frames 2
    # to 30: 23.2 ms to 348.3 ms) is shared by characters: "Owls" gets 4 of 6, up to frame 20 2/3
    # (sample 5290.7 = 239.9 ms), "42" the rest
    timing = TimingEvent(7, [(2, 10), (12, 20), (22, 30)], FRAME_S, 32)
    got = word_timestamps("Owls 42.", timing)
    assert got == [
        {"word": "Owls", "start": 0.0232, "end": 0.2399},
        {"word": "42", "start": 0.2399, "end": 0.3483},
    ]
    assert_timeline(got, 0.0, 32 * FRAME_S)
    assert word_timestamps("...", timing) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, words, spoken_groups",
    [
        (  # one spoken group per written word
            "The quick brown fox jumps over the lazy dog, and then it runs away.",
            "The quick brown fox jumps over the lazy dog and then it runs away".split(),
            14,
        ),
        (  # espeak runs "on the" together: fewer groups than words, the proportional fallback
            "Take the second road on the left after the bridge.",
            ["Take", "the", "second", "road", "on", "the", "left", "after", "the", "bridge"],
            9,
        ),
        ("Your order will arrive in 5 days.", ["Your", "order", "will", "arrive", "in", "5", "days"], 7),
    ],
)
def test_real_voice_timestamps_are_one_per_written_word_in_order_inside_the_audio(piper, text, words, spoken_groups):
    from stream_server.models.piper_vits.piper_voice import SynthesisParams

    params = SynthesisParams(seed=7)
    enc = piper.encode(piper.phoneme_ids(text), params)
    groups = piper.word_frames(enc)
    assert len(groups) == spoken_groups
    assert groups == frames_read_off_the_track(piper.phonemizer.id_map, enc.phoneme_ids, enc.durations.tolist())
    audio = piper.synthesize(text, params)  # same seed: the audio these timings belong to
    offset = 3.25  # the context's earlier sentences
    timing = TimingEvent(0, groups, piper.hop_length / piper.sample_rate, enc.num_frames)
    got = word_timestamps(text, timing, offset)
    assert [w["word"] for w in got] == words
    assert_timeline(got, offset, offset + len(audio) / piper.sample_rate)


# --- the sentence cache -----------------------------------------------------------------------
def test_cache_entry_keeps_timings_and_replays_them_first():
    pcm = np.linspace(-0.5, 0.5, 40 * 256, dtype=np.float32)
    entry = CachedSentence("hi you", "m", 22050, 256, pcm, [(2, 10), (22, 28)])
    codec = EntryCodec.with_random_secret()
    back = codec.decode(codec.encode(entry))
    assert back.word_timings == [(2, 10), (22, 28)]
    events = list(replay_events(back, ChunkConfig(18, 64, 11, 11), request_id=3))
    timing, *audio = events
    assert isinstance(timing, TimingEvent) and timing.word_frames == [(2, 10), (22, 28)]
    assert timing.frame_seconds == 256 / 22050 and timing.num_frames == 40 and not timing.last
    assert all(isinstance(e, AudioEvent) for e in audio) and audio[-1].last
    assert np.array_equal(np.concatenate([e.pcm for e in audio]), pcm)
    # a replayed sentence gets the same `words` as when it was synthesized
    synthesized = TimingEvent(3, [(2, 10), (22, 28)], 256 / 22050, 40)
    assert word_timestamps("Hi, you.", timing, 0.5) == word_timestamps("Hi, you.", synthesized, 0.5)
    # an entry without timings replays audio only
    plain = CachedSentence("hi you", "m", 22050, 256, pcm)
    assert all(isinstance(e, AudioEvent) for e in replay_events(plain, ChunkConfig(18, 64, 11, 11)))
