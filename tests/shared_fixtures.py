"""Where the shared reference data lives (../shared beside the checkout, as on CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_dir() -> Path:
    """$STREAM_SERVER_SHARED, else <repo>/../shared, else /work/shared."""
    env = os.environ.get("STREAM_SERVER_SHARED")
    if env:
        if not Path(env).is_dir():
            pytest.fail(f"STREAM_SERVER_SHARED={env} is not a directory")
        return Path(env)
    for candidate in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")):
        if candidate.is_dir():
            return candidate
    pytest.fail("no shared folder (set STREAM_SERVER_SHARED, or have <repo>/../shared or /work/shared)")


def gpt_sovits_fixtures() -> Path:
    return shared_dir() / "fixtures" / "gpt_sovits"
