# The two set-up commands (see README): `make serve` and `make test`.
# Each creates .venv on first use and installs what it needs; later runs reuse it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: serve test bench clean

$(VENV)/.serve-deps: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "stream_server needs Python 3.11"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first: 2.13.0 is the CPU build (other versions pull a multi-GB CUDA build)
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $@

$(VENV)/.test-deps: $(VENV)/.serve-deps
	$(PIP) -e '.[test]'
	touch $@

serve: $(VENV)/.serve-deps
	$(VENV)/bin/stream-server serve $(ARGS)

test: $(VENV)/.test-deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.test-deps
	$(PY) bench/bench_stream.py $(ARGS)

clean:
	rm -rf $(VENV)
