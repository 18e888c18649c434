"""Intelligibility of the PyTorch voice: Whisper (faster-whisper, int8 CPU) transcribes what it
says with the default sampling parameters, and the word error rate must stay <= 6 %.

Run with ``pytest -s tests/test_vits_wer.py`` to see the per-sentence table.
"""

from __future__ import annotations

import time

import pytest

from prerequisites import require_module

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

MAX_WER = 0.06
SEED = 1234

SENTENCES = [
    "Good morning, how can I help you today?",
    "The train to London leaves at seven fifteen from platform four.",
    "Could you please turn off the lights in the kitchen?",
    "Welcome back, traveler. The blacksmith has been waiting for you.",
    "I found three apples and a loaf of bread on the table.",
    "Why did the captain leave the ship before the storm?",
    "Your order will arrive in 5 days.",
    "Emma and John are going to Paris next summer.",
    "Please remember to water the plants while I am away.",
    "The temperature outside is twenty degrees and the sky is clear.",
    "Do you want to hear a story about the old lighthouse?",
    "I cannot open that door without the silver key.",
    "There are 12 months in a year and 7 days in a week.",
    "My favorite color is green, but I also like blue.",
    "Take the second road on the left after the bridge.",
    "The meeting has been moved to Thursday afternoon.",
    "What is the fastest way to get to the airport?",
    "Stay close to me, the forest is dangerous at night.",
    "She bought a new bicycle for her birthday.",
    "Thank you for calling, have a wonderful evening.",
    "The river flows quietly past the sleeping village.",
    "Can you tell me the time, please?",
]


def test_normalization():
    from stream_server.intelligibility import normalize_text

    text = "It's 42 degrees - twenty-one, really?"
    assert normalize_text(text) == "its forty two degrees twenty one really"
    assert normalize_text("Arrive in 5 days.") == normalize_text("arrive in five days")
    assert normalize_text("1,500 and 2024") == "one thousand five hundred and two thousand twenty four"


def test_whisper_wer_of_torch_voice():
    require_module("faster_whisper")
    from stream_server.intelligibility import WhisperJudge, corpus_wer, format_table
    from stream_server.models.piper_vits.piper_voice import PiperVoice, SynthesisParams

    start = time.perf_counter()
    voice = PiperVoice.from_package()
    params = SynthesisParams(seed=SEED)  # default noise_scale / length_scale / noise_w
    items = [(text, voice.synthesize(text, params), voice.sample_rate) for text in SENTENCES]
    synthesized = time.perf_counter()

    judge = WhisperJudge(beam_size=1, cpu_threads=1)
    scores = judge.score(items)
    total = corpus_wer(scores)
    seconds = sum(len(audio) for _, audio, _ in items) / voice.sample_rate
    print("\n" + format_table(scores))
    print(
        f"{len(items)} sentences, {seconds:.1f} s of audio; synthesis {synthesized - start:.1f} s,"
        f" whisper {time.perf_counter() - synthesized:.1f} s"
    )
    assert len(scores) >= 20
    assert total <= MAX_WER, f"WER {total:.3f} > {MAX_WER}"
