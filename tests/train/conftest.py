"""Fixtures for the training tests: small tokenized datasets made from random token ids."""

from __future__ import annotations

import random

import pytest

from longcurate.core.jsonl import write_jsonl


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


def _long(i: int) -> dict:
    ctx = " ".join(f"Fact {j}: item {i}-{j} is blue." for j in range(20))
    ins, resp = f"What colour is item {i}-3?", f"Item {i}-3 is blue."
    return {"id": f"long-{i}", "kind": "fine", "context": ctx, "instruction": ins, "response": resp,
            "messages": [{"role": "user", "content": f"{ctx}\n\n{ins}"}, {"role": "assistant", "content": resp}]}


def _short(i: int) -> dict:
    return {"id": f"short-{i}", "conversations": [{"from": "human", "value": f"Say {i}."},
                                                   {"from": "gpt", "value": f"{i}."},
                                                   {"from": "human", "value": "Again?"},
                                                   {"from": "gpt", "value": f"{i} again."}]}


@pytest.fixture
def run_cfg(tmp_path, tokenizer):
    """A train-stage run on a tiny random model: two budget files (the largest one is trained on),
    short chat data, 3 packed steps in fp32."""
    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from oracles.models import random_llama

    budgets = tmp_path / "run" / "budgets"
    write_jsonl(budgets / "gateau-6.jsonl", [_long(i) for i in range(6)])
    write_jsonl(budgets / "gateau-3.jsonl", [_long(i) for i in range(3)])
    write_jsonl(budgets / "budgets.jsonl", [{"file": "gateau-3.jsonl", "samples": 3},
                                            {"file": "gateau-6.jsonl", "samples": 6}])
    write_jsonl(tmp_path / "short.jsonl", [_short(i) for i in range(20)])
    random_llama(seed=0).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    return build(RunConfig, {
        "output_dir": str(tmp_path / "run"), "model": str(tmp_path / "model"), "stages": ["train"],
        "train": {"mix": {"short": str(tmp_path / "short.jsonl"), "short_size": 4},
                  "tokenize": {"max_length": 512}, "max_steps": 3, "per_device_batch_size": 2,
                  "precision": "fp32", "learning_rate": 1e-3, "batching": "packed", "max_tokens": 512}})
