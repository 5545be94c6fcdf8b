# One-command set-up: `make demo` and `make test` create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
REAL_DATA ?= ../shared/data/real_kr

.PHONY: demo test lint space venv install install-all browser edge-venvs clean release-report

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

# Clean runtimes for the deployment bundle's tests: the common edge profile (tflite-runtime 2.14
# needs numpy<2) and LiteRT. Only numpy, Pillow and the runtime: nothing of kr_lpr or torch.
# Pillow as in .venv (gradio caps it below 13): Pillow 13 resizes some crops differently.
EDGE_PILLOW := "pillow<13"

.venv-edge-tflite/.done:
	$(PYTHON) -m venv .venv-edge-tflite
	.venv-edge-tflite/bin/python -m pip install -q "tflite-runtime==2.14.0" "numpy<2" $(EDGE_PILLOW)
	touch $@

.venv-edge-litert/.done:
	$(PYTHON) -m venv .venv-edge-litert
	.venv-edge-litert/bin/python -m pip install -q ai-edge-litert numpy $(EDGE_PILLOW)
	touch $@

edge-venvs: .venv-edge-tflite/.done .venv-edge-litert/.done

# Headless Chromium from Debian for the Space's browser test (never a downloaded browser build),
# and a Korean font so its screenshots show Hangul.
browser:
	@(command -v chromium >/dev/null 2>&1 && fc-list | grep -qi nanum) || \
		(apt-get update -qq && apt-get install -y -qq chromium fonts-nanum >/dev/null)

demo: $(VENV)/.core
	$(PY) scripts/demo.py

test: $(VENV)/.all browser edge-venvs
	$(VENV)/bin/ruff check src scripts tests space
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(VENV)/.all
	$(VENV)/bin/ruff check src scripts tests space
	$(VENV)/bin/ruff format --check src scripts tests space

# The local release weights when they exist, else the Hub repo in $$KR_LPR_MODEL (default org/kr-lpr).
space: $(VENV)/.all
	$(PY) space/app.py $(if $(wildcard release/kr-lpr/config.json),--model release/kr-lpr)

# Every figure in README.md and the model card comes from these commands, run on the committed release/.
# (evaluate.py exits 1 when an accuracy target is missed; the report goes on and prints it.)
release-report: $(VENV)/.all
	$(VENV)/bin/kr-lpr export release/kr-lpr --out release/kr-lpr
	$(PY) scripts/model_stats.py --json release/model_stats.json
	-$(PY) scripts/evaluate.py --model release/kr-lpr --real $(REAL_DATA) --out release
	-$(PY) scripts/evaluate.py --model release/kr-lpr --real $(REAL_DATA) --out release --backend tflite-uint8
	$(PY) scripts/benchmark.py --model release/kr-lpr --json-out release/benchmark.json
	$(PY) scripts/build_hub_repo.py --model release/kr-lpr --out build/hub --eval-real release/eval_real.json \
		--eval-synth release/eval_synth.json --benchmark release/benchmark.json

clean:
	rm -rf $(VENV) .venv-edge-tflite .venv-edge-litert .pytest_cache build dist src/*.egg-info
