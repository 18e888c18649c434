# The two set-up commands (see README): `make serve` and `make test`; while changing the code,
# `make check` (lint and types) and `make test-fast` (README, "Tests").
# Each creates .venv on first use and installs what it needs; later runs reuse it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# On CI (CI=true) pip writes no .pyc for the whole venv (about a minute of one core's time for
# torch, transformers and the rest); Python compiles what the tests import, once, as it loads it.
PIP := $(PY) -m pip install --quiet --disable-pip-version-check $(if $(CI),--no-compile)

.PHONY: serve test test-fast check bench cluster train-voice clean system-deps

# Where torch comes from (README, "Set-up"): empty is PyPI (on Linux x86_64 that is the CUDA build,
# several GB, unless a local CPU wheel is found first); https://download.pytorch.org/whl/cpu is the
# CPU build, .../whl/cuXYZ a CUDA one.
TORCH_INDEX_URL ?=

$(VENV)/.serve-deps: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(None if sys.version_info >= (3, 11) else "stream_server needs Python 3.11 or newer, not %d.%d (PYTHON=python3.X make ...)" % sys.version_info[:2])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, on its own: the version pyproject.toml pins, from TORCH_INDEX_URL if set
	$(PIP) torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PIP) -e '.[gpt-sovits]'
	touch $@

$(VENV)/.test-deps: $(VENV)/.serve-deps
	$(PIP) -e '.[test]'
	# The Distill-MOS speech-quality judge (stream_server/speech_quality.py, bench/bench_quality.py),
	# without its declared dependencies: their torchaudio pins another torch than ours, and the model
	# itself needs only torch (torchaudio is stood in for at import; soxr resamples its input)
	$(PIP) --no-deps distillmos==0.9.1 xls-r-sqa==0.1.0
	touch $@

serve: $(VENV)/.serve-deps
	$(VENV)/bin/stream-server serve $(ARGS)

# Debian packages the tests need, as binary:package: Chromium, driven by Playwright in
# tests/test_web_demo.py (never `playwright install`: it downloads its own browser), and HAProxy,
# the front door of tests/test_cluster.py and `make cluster`. Missing ones are installed with apt-get.
CHROMIUM ?= /usr/bin/chromium
HAPROXY ?= /usr/sbin/haproxy
SYSTEM_DEPS ?= $(CHROMIUM):chromium $(HAPROXY):haproxy
system-deps:
	@missing=; for dep in $(SYSTEM_DEPS); do \
	  [ -x "$${dep%%:*}" ] || missing="$$missing $${dep#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "system-deps: missing:$$missing, and there is no apt-get; install them yourself" >&2; exit 1; \
	  fi; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "system-deps: installing$$missing needs root (or sudo)" >&2; exit 1; fi; \
	  echo "system-deps: installing$$missing with apt-get"; \
	  $$SUDO apt-get update && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

test: system-deps $(VENV)/.test-deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The fast tier: every test but the `slow` ones (those start a real server, load a whole voice or
# run the Whisper judge), about a minute; no browser or HAProxy needed.
test-fast: $(VENV)/.test-deps
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# Lint and types, as configured in pyproject.toml ([tool.ruff], [tool.mypy]); CI runs it first.
check: $(VENV)/.test-deps
	$(PY) -m ruff check stream_server tests bench
	$(PY) -m mypy

bench: $(VENV)/.test-deps
	$(PY) bench/bench_stream.py $(ARGS)

# Two replicas, one shared Redis, HAProxy in front, on loopback (README "Running several replicas").
cluster: $(VENV)/.serve-deps
	@$(MAKE) --no-print-directory system-deps SYSTEM_DEPS=$(HAPROXY):haproxy
	$(PY) deploy/cluster/cluster.py $(ARGS)

# The AR voice recipe (README "The AR voice and its recipe"); the judge needs the test extras.
train-voice: $(VENV)/.test-deps
	$(PY) -m stream_server.train --out runs/joe_ar --install $(ARGS)

clean:
	rm -rf $(VENV)
