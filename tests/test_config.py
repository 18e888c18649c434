"""configs/default.yaml documents every setting and its default: without a config file the server
runs on exactly the values written there, and a file changes only what it names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from stream_server.config import AppConfig, load_config

DEFAULT_YAML = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


def documented() -> dict:
    """configs/default.yaml as a user reads it: plain YAML, no stream_server code involved."""
    return yaml.safe_load(DEFAULT_YAML.read_text())


def flat(tree: dict, prefix: str = "") -> dict:
    """{"server.port": 8000, "voices.joe.kind": "piper_vits", ...}: one entry per setting, so a
    failure names the setting that differs."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def in_effect(cfg: AppConfig) -> dict:
    return flat(cfg.model_dump(mode="json"))


def test_default_yaml_equals_builtin_defaults():
    assert load_config(DEFAULT_YAML) == AppConfig()


def test_no_file_means_the_documented_defaults():
    """Every value default.yaml spells out is in effect without a file, and every setting in
    effect is spelled out there (none undocumented, none documented that does not exist)."""
    assert in_effect(load_config(None)) == flat(documented())


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


def test_override_takes_effect_and_keeps_other_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("server:\n  port: 9123\nengine:\n  max_slots: 3\n")
    cfg = load_config(f)
    assert cfg.server.port == 9123 and cfg.engine.max_slots == 3
    assert cfg.server.host == "127.0.0.1"  # a sibling of an overridden value keeps its default
    # everything else, in the overridden sections and elsewhere, is as default.yaml documents it
    assert in_effect(cfg) == flat(documented()) | {"server.port": 9123, "engine.max_slots": 3}


def test_a_config_written_for_the_previous_version_still_loads(tmp_path):
    """Every voice had `weights` and `allow_random_weights` keys in earlier default configs."""
    old = tmp_path / "old.yaml"
    old.write_text(
        "default_voice: joe_ar\nvoices:\n"
        "  joe_ar: {kind: ar, weights: null, allow_random_weights: false}\n"
        "  joe: {kind: piper_vits, weights: null, allow_random_weights: false}\n"
    )
    cfg = load_config(old)
    assert cfg.voices["joe"].kind == "piper_vits" and cfg.voices["joe_ar"].kind == "ar"
    bad = tmp_path / "bad.yaml"
    bad.write_text("voices:\n  joe_ar: {kind: ar}\n  joe: {kind: piper_vits, weights: other.pt}\n")
    with pytest.raises(ValidationError, match="weights"):
        load_config(bad)


def test_a_backlog_smaller_than_a_message_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("session:\n  max_text_chars: 5000\n  max_pending_chars: 4000\n")
    with pytest.raises(ValidationError, match="max_pending_chars"):
        load_config(bad)
