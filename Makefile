# The two set-up commands (see README): `make serve` and `make test`.
# Each creates .venv on first use and installs what it needs; later runs reuse it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: serve test bench train-voice clean system-deps

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
	touch $@

serve: $(VENV)/.serve-deps
	$(VENV)/bin/stream-server serve $(ARGS)

# System packages the tests need: Debian's Chromium, driven by Playwright in
# tests/test_web_demo.py (never `playwright install`: it downloads its own browser).
CHROMIUM ?= /usr/bin/chromium
system-deps:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "system-deps: $(CHROMIUM) is missing and there is no apt-get; install Chromium yourself" >&2; exit 1; \
	  fi; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "system-deps: installing Chromium needs root (or sudo)" >&2; exit 1; fi; \
	  echo "system-deps: installing chromium with apt-get"; \
	  $$SUDO apt-get update && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	fi

test: system-deps $(VENV)/.test-deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.test-deps
	$(PY) bench/bench_stream.py $(ARGS)

# The AR voice recipe (README "The AR voice and its recipe"); the judge needs the test extras.
train-voice: $(VENV)/.test-deps
	$(PY) -m stream_server.train --out runs/joe_ar --install $(ARGS)

clean:
	rm -rf $(VENV)
