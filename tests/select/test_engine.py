"""Scoring engine: response NLL equals the one-sample-per-forward full-logit reference."""

from __future__ import annotations

import math
import random

import pytest

from longcurate.core.engine import NLLResult, ScoreItem, ScoringEngine, plan_batches, validate_item
from oracles.select import reference_response_nll


def _random_items(n: int, min_len: int, max_len: int, seed: int = 0, vocab: int = 49152) -> list[ScoreItem]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        length = rng.randint(min_len, max_len)
        r = rng.randint(1, max(1, length // 4))
        ids = [rng.randrange(vocab) for _ in range(length)]
        items.append(ScoreItem(f"s{i}", ids, length - r))
    return items


def _assert_close(got: list[NLLResult], want: list[NLLResult], rel: float) -> None:
    assert [g.id for g in got] == [w.id for w in want]
    for g, w in zip(got, want):
        assert g.n_tokens == w.n_tokens
        assert g.nll_sum == pytest.approx(w.nll_sum, rel=rel), g.id


def test_plan_batches_budget_order_and_coverage():
    lengths = [5, 100, 30, 30, 70, 1000, 2, 30]
    batches = plan_batches(lengths, batch_tokens=120, max_batch_size=3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert batches[0] == [5]  # longer than the budget: alone, and first
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 120
        assert lengths[b[0]] == max(lengths[i] for i in b)  # longest first inside a batch
    # length-sorted, ties in input order
    assert flat == sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    assert plan_batches([], 10, 2) == []
    with pytest.raises(ValueError):
        plan_batches([1], 0, 1)


def test_nll_result_properties():
    r = NLLResult("a", 6.0, 3)
    assert r.nll == 2.0 and r.ppl == pytest.approx(math.exp(2.0))
    assert math.isnan(NLLResult("b", 0.0, 0).ppl)


@pytest.mark.parametrize("bad", [
    ScoreItem("x", [1], 0),
    ScoreItem("x", [1, 2, 3], 0),  # no prompt token to predict the first response token
    ScoreItem("x", [1, 2, 3], 3),  # empty response
])
def test_validate_rejects_unscorable(bad):
    with pytest.raises(ValueError, match="'x'"):
        validate_item(bad)


def test_validate_segment_spans():
    with pytest.raises(ValueError, match="segment span"):
        validate_item(ScoreItem("x", [1, 2, 3, 4], 3, [(2, 2)]), need_segments=True)
    with pytest.raises(ValueError, match="segment span"):
        validate_item(ScoreItem("x", [1, 2, 3, 4], 3, [(0, 5)]), need_segments=True)


def test_response_nll_matches_reference_mixed_lengths(tiny_model):
    items = _random_items(11, 20, 300, seed=1)
    # A budget that forces several batches of different shapes (and one item alone).
    engine = ScoringEngine(tiny_model, batch_tokens=700, max_batch_size=4, show_progress=False)
    got = engine.response_nll(items)
    _assert_close(got, reference_response_nll(tiny_model, items), rel=1e-4)
    assert tiny_model.config._attn_implementation == "sdpa"


def test_response_nll_is_batch_invariant(tiny_model):
    """Segment-PPL style: many short (segment + instruction + response) rows in one batch give the
    same NLL as each row alone (acceptance (c))."""
    items = _random_items(40, 8, 60, seed=2)
    batched = ScoringEngine(tiny_model, batch_tokens=100_000, max_batch_size=64, show_progress=False)
    alone = ScoringEngine(tiny_model, batch_tokens=1, max_batch_size=1, show_progress=False)
    got = batched.response_nll(items)
    _assert_close(got, alone.response_nll(items), rel=1e-5)
    _assert_close(got, reference_response_nll(tiny_model, items), rel=1e-4)


def test_response_nll_duplicates_and_order(tiny_model):
    base = _random_items(3, 30, 90, seed=3)
    items = [base[2], base[0], base[2], base[1]]
    got = ScoringEngine(tiny_model, show_progress=False).response_nll(items)
    assert [g.id for g in got] == ["s2", "s0", "s2", "s1"]
    assert got[0].nll_sum == pytest.approx(got[2].nll_sum, rel=1e-6)


def test_response_nll_small_head_chunks(tiny_model):
    items = _random_items(5, 40, 120, seed=4)
    want = ScoringEngine(tiny_model, show_progress=False).response_nll(items)
    got = ScoringEngine(tiny_model, head_chunk=7, show_progress=False).response_nll(items)
    _assert_close(got, want, rel=1e-6)


@pytest.mark.parametrize("fp32_head", [True, False])
def test_response_nll_bf16_close_to_fp32(fp32_head):
    from oracles.models import random_llama

    fp32 = random_llama(seed=5)
    bf16 = random_llama(seed=5, dtype="bfloat16")
    items = _random_items(6, 50, 200, seed=5)
    want = reference_response_nll(fp32, items)
    engine = ScoringEngine(bf16, show_progress=False, fp32_head=fp32_head)
    _assert_close(engine.response_nll(items), want, rel=2e-2)
    assert (engine._head32 is not None) == fp32_head


def test_response_nll_is_deterministic(tiny_model):
    items = _random_items(8, 20, 150, seed=6)
    engine = ScoringEngine(tiny_model, batch_tokens=400, show_progress=False)
    a = [r.nll_sum for r in engine.response_nll(items)]
    b = [r.nll_sum for r in engine.response_nll(items)]
    assert a == b


@pytest.mark.integration
def test_response_nll_matches_reference_smollm2(smollm2, tokenizer):
    """Real text, real model, mixed lengths in one batch."""
    words = ("the river flows past the old mill where the miller kept his accounts in a ledger bound in "
             "green leather and every spring the water rose").split()
    rng = random.Random(7)
    items = []
    for i, n_words in enumerate([40, 180, 90, 260, 15]):
        prompt = " ".join(rng.choice(words) for _ in range(n_words))
        response = " ".join(rng.choice(words) for _ in range(rng.randint(3, 30)))
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(" " + response, add_special_tokens=False)["input_ids"]
        items.append(ScoreItem(f"t{i}", p + r, len(p)))
    got = ScoringEngine(smollm2, batch_tokens=1200, show_progress=False).response_nll(items)
    _assert_close(got, reference_response_nll(smollm2, items), rel=1e-4)


def test_plan_batches_same_length():
    lengths = [10, 10, 7, 10, 7, 3]
    batches = plan_batches(lengths, batch_tokens=1000, max_batch_size=8, same_length=True)
    assert batches == [[0, 1, 3], [2, 4], [5]]


def test_dynamic_ntk_rope_scores_each_sample_as_if_alone():
    """Dynamic-NTK RoPE (HMG's θ_A in the paper) depends on the batch's longest position and HF
    caches the longest length seen. The engine batches only equal lengths and resets the cache, so
    every sample scores as on a fresh model alone, whatever ran before it."""
    from oracles.models import random_llama
    from longcurate.core.engine import length_dependent_rope

    def fresh():  # large weights: the RoPE frequencies visibly change the NLL
        return random_llama(seed=8, max_position_embeddings=64, initializer_range=0.2,
                            rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})

    model = fresh()
    assert length_dependent_rope(model.config)
    assert not length_dependent_rope(random_llama(seed=8).config)
    items = _random_items(6, 40, 200, seed=8)
    items.append(ScoreItem("same", items[0].input_ids[::-1], items[0].response_start))  # equal length
    want = [reference_response_nll(fresh(), [it])[0] for it in items]
    engine = ScoringEngine(model, batch_tokens=100_000, show_progress=False)
    assert engine.same_length
    _assert_close(engine.response_nll(items), want, rel=1e-5)
    _assert_close(engine.response_nll(items[::-1]), want[::-1], rel=1e-5)  # order does not matter


def test_score_bench_script_runs(capsys):
    """The benchmark script stays runnable (a smoke run on a tiny random model; nothing timed)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "score_bench.py"
    spec = importlib.util.spec_from_file_location("score_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--model", "random:tiny", "--num-samples", "2", "--min-tokens", "130",
                       "--max-tokens", "200", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "ratio" in out and "max |dNLL|/NLL" in out


def test_ppl_overflows_to_inf_not_an_error():
    assert NLLResult("a", 800.0 * 2, 2).ppl == float("inf")
    assert NLLResult("a", 2.0, 2).ppl == pytest.approx(2.718281828, rel=1e-9)
