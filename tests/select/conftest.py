"""Fixtures for the select tests: small synth-like samples with gold spans, and a tiny model folder
that the CLI can load by path (random 2-layer Llama + the SmolLM2 tokenizer)."""

from __future__ import annotations

import json
import random

import pytest

WORDS = ("river stone market winter garden signal copper harbor lantern meadow orbit canyon violet "
         "engine falcon marble thunder velvet prairie summit cobalt ember glacier harvest island jungle "
         "kettle ladder mirror nectar oasis pepper quartz rocket saddle timber umbrella valley walnut").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_sample(i: int, rng: random.Random, n_paragraphs: int, kind: str = "fine") -> dict:
    """A sample whose response quotes one sentence of the context (the gold span)."""
    paras = [" ".join(sentence(rng, rng.randint(8, 14)) for _ in range(4)) for _ in range(n_paragraphs)]
    gold_p = rng.randrange(n_paragraphs)
    gold_sentence = f"The secret code of item {i} is {rng.choice(WORDS)} {rng.randint(100, 999)}."
    paras[gold_p] = paras[gold_p] + " " + gold_sentence
    context = "\n\n".join(paras)
    start = context.index(gold_sentence)
    return {"id": f"s{i:03d}", "kind": kind, "context": context,
            "instruction": f"What is the secret code of item {i}?", "response": gold_sentence,
            "messages": [], "gold": [{"segment": gold_p, "char_start": start, "char_end": start + len(gold_sentence)}],
            "num_segments": n_paragraphs, "length": 0, "source": {"generator": "test"}}


def make_samples(n: int, seed: int = 0, min_par: int = 3, max_par: int = 12) -> list[dict]:
    rng = random.Random(seed)
    return [make_sample(i, rng, rng.randint(min_par, max_par)) for i in range(n)]


def write_jsonl(path, records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, tokenizer):
    """A tiny random Llama saved with the SmolLM2 tokenizer: loadable by path, fast on CPU."""
    from oracles.models import random_llama

    folder = tmp_path_factory.mktemp("tiny-llama")
    model = random_llama(seed=0, max_position_embeddings=2048)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def samples():
    return make_samples(12)
