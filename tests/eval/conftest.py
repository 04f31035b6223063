"""Fixtures of the eval tests: two tiny random Llamas saved as model folders (with the SmolLM2
tokenizer), standing in for a trained checkpoint and its base."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tokenizer):
    from oracles.models import random_llama

    root = tmp_path_factory.mktemp("models")
    for name, seed in (("base", 1), ("checkpoint", 2)):
        m = random_llama(seed=seed)
        m.generation_config.eos_token_id = tokenizer.eos_token_id
        m.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    return root
