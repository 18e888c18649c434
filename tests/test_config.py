"""configs/default.yaml and the built-in defaults must say the same thing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stream_server.config import AppConfig, load_config

DEFAULT_YAML = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


def test_default_yaml_equals_builtin_defaults():
    assert load_config(DEFAULT_YAML) == AppConfig()


def test_no_file_means_defaults():
    assert load_config(None) == AppConfig()


def test_unknown_keys_are_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine:\n  max_slotz: 4\n")
    with pytest.raises(ValidationError, match="max_slotz"):
        load_config(bad)


def test_default_voice_must_exist(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("default_voice: nobody\n")
    with pytest.raises(ValidationError, match="nobody"):
        load_config(bad)


def test_override_keeps_other_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("server:\n  port: 9123\nengine:\n  max_slots: 3\n")
    cfg = load_config(f)
    assert cfg.server.port == 9123 and cfg.engine.max_slots == 3
    assert cfg.server.host == "127.0.0.1" and cfg.engine.chunk_frames == AppConfig().engine.chunk_frames
