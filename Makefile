# One-command set-up: `make demo` and `make test` create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
REAL_DATA ?= ../shared/data/real_kr

.PHONY: demo test lint space venv install install-all browser clean

$(VENV)/.core:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned to the CPU wheel: the package's torch range then installs nothing from CUDA.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	touch $@

$(VENV)/.all: $(VENV)/.core pyproject.toml
	$(PIP) install -q -e ".[all]"
	touch $@

venv install: $(VENV)/.core

install-all: $(VENV)/.all

# Headless Chromium from Debian for the Space's browser test (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

demo: $(VENV)/.core
	$(PY) scripts/demo.py

test: $(VENV)/.all browser
	$(VENV)/bin/ruff check src scripts tests space
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(VENV)/.all
	$(VENV)/bin/ruff check src scripts tests space
	$(VENV)/bin/ruff format --check src scripts tests space

space: $(VENV)/.all
	$(PY) space/app.py

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
