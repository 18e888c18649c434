"""Config of the compatibility protocols: voice aliases, seen as a client of another protocol sees
them (the voice a name a client sends is spoken with)."""

from __future__ import annotations

import typing
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pydantic import ValidationError

from stream_server.config import AppConfig, VoiceSection, load_config
from stream_server.server.compat import resolve_voice


def _openai_voice_names() -> tuple[str, ...]:
    """OpenAI's built-in voice names, as the official client library lists them."""
    from openai.types.audio.speech_create_params import SpeechCreateParams

    hint = typing.get_type_hints(SpeechCreateParams, include_extras=True)["voice"]
    literals = [a for a in typing.get_args(typing.get_args(hint)[0]) if typing.get_origin(a) is typing.Literal]
    return tuple(sorted(name for lit in literals for name in typing.get_args(lit)))


OPENAI_VOICES = _openai_voice_names()
DEFAULT_YAML = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


def spoken_with(cfg: AppConfig, name: str | None) -> str:
    """The voice a request naming `name` (OpenAI, Wyoming, ElevenLabs) asks the session for."""
    return resolve_voice(SimpleNamespace(config=cfg), name)


@pytest.mark.parametrize("name", OPENAI_VOICES)
def test_every_openai_voice_name_is_spoken_with_the_default_voice(name):
    documented_default = yaml.safe_load(DEFAULT_YAML.read_text())["default_voice"]
    assert spoken_with(load_config(None), name) == documented_default
    cfg = AppConfig(voices={"amy": VoiceSection()}, default_voice="amy")
    assert spoken_with(cfg, name) == "amy" and "amy" in cfg.voices


def test_openai_names_follow_a_default_voice_set_in_a_config_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("default_voice: joe\n")
    cfg = load_config(f)
    assert {name: spoken_with(cfg, name) for name in OPENAI_VOICES} == {name: "joe" for name in OPENAI_VOICES}


def test_the_builtin_aliases_are_openais_voice_names_and_nothing_else():
    cfg = AppConfig(voices={"amy": VoiceSection()}, default_voice="amy")
    assert sorted(cfg.voice_aliases) == sorted(OPENAI_VOICES)  # what GET /v1/audio/voices lists
    assert spoken_with(cfg, "nobody") == "nobody"  # not an alias: passed on, the session refuses it
    assert spoken_with(cfg, None) == "amy"  # no voice named: the default voice


def test_an_alias_must_name_a_voice():
    with pytest.raises(ValidationError, match="nobody"):
        AppConfig(voice_aliases={"rachel": "nobody"})
    assert AppConfig(voice_aliases={"21m00Tcm4TlvDq8ikWAM": "joe"}).voice_aliases == {"21m00Tcm4TlvDq8ikWAM": "joe"}
