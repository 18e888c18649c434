"""Config of the compatibility protocols: voice aliases."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream_server.config import AppConfig, VoiceSection


def test_openai_voice_names_alias_the_default_voice():
    cfg = AppConfig(voices={"amy": VoiceSection()}, default_voice="amy")
    assert cfg.voice_aliases["alloy"] == "amy" and len(cfg.voice_aliases) == 11


def test_an_alias_must_name_a_voice():
    with pytest.raises(ValidationError, match="nobody"):
        AppConfig(voice_aliases={"rachel": "nobody"})
    assert AppConfig(voice_aliases={"21m00Tcm4TlvDq8ikWAM": "joe"}).voice_aliases == {"21m00Tcm4TlvDq8ikWAM": "joe"}
