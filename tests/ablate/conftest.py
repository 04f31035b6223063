"""A fake scored pool (samples with known lengths and a ranked file), for tests that need no model."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from longcurate.core.jsonl import write_jsonl


def make_pool(folder: Path, n: int = 20, seed: int = 3, hmg: bool = False) -> tuple[dict[str, int], list[dict]]:
    """samples.jsonl (lengths 100-2000) and select/ranked.jsonl (hmg, cas) in `folder`; with `hmg`, also
    select/hmg.jsonl with each sample's `n_tokens` (its length) and `n_response_tokens` (5-80), else
    lengths are the samples' own. Returns ({id: length}, the ranked records)."""
    rng = random.Random(seed)
    samples = [{"id": f"s{i:02d}", "kind": "fine", "context": f"context {i}", "instruction": "Q?",
                "response": f"A{i}", "messages": [], "length": rng.randint(100, 2000)} for i in range(n)]
    ranked = [{"id": s["id"], "rank": r, "score": 1 - r / n, "hmg": rng.random(), "cas": rng.random()}
              for r, s in enumerate(rng.sample(samples, n))]
    write_jsonl(folder / "samples.jsonl", samples)
    if hmg:
        write_jsonl(folder / "select" / "hmg.jsonl", [{"id": s["id"], "hmg": 0.0, "n_tokens": s["length"],
                                                      "n_response_tokens": rng.randint(5, 80)} for s in samples])
    write_jsonl(folder / "select" / "ranked.jsonl", ranked)
    return {s["id"]: s["length"] for s in samples}, ranked


@pytest.fixture
def fake_pool():
    return make_pool
