"""Fixtures for the training tests: small tokenized datasets made from random token ids."""

from __future__ import annotations

import random

import pytest


def make_samples(n: int, *, seed: int = 0, min_len: int = 6, max_len: int = 40, vocab: int = 49152,
                 short_every: int = 3) -> list[dict]:
    """Tokenized samples in the tokenize stage's format: a prompt (labels -100) then a response."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        n_tok = rng.randint(min_len, max_len)
        n_resp = rng.randint(1, max(1, n_tok // 3))
        ids = [rng.randrange(3, vocab) for _ in range(n_tok)]
        labels = [-100] * (n_tok - n_resp) + ids[n_tok - n_resp:]
        out.append({"id": f"s{i}", "source": "short" if short_every and i % short_every == 0 else "long",
                    "input_ids": ids, "labels": labels, "length": n_tok, "n_response_tokens": n_resp})
    return out


def make_dataset(samples: list[dict]):
    from datasets import Dataset

    cols = {k: [s[k] for s in samples] for k in samples[0]}
    return Dataset.from_dict(cols)


@pytest.fixture(name="make_samples")
def make_samples_fixture():
    """The factory itself (test files cannot import conftest under --import-mode=importlib)."""
    return make_samples


@pytest.fixture(name="make_dataset")
def make_dataset_fixture():
    return make_dataset
