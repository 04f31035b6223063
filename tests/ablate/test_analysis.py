"""The ablation's statistics and report from per-item files: seeds averaged per item, intervals over
items, paired differences against random, seed spread, position buckets, and sentences that claim a
difference only when its interval excludes 0."""

from __future__ import annotations

import statistics

import pytest

from longcurate.ablate.analysis import bucket_of, measure_stats
from longcurate.ablate.outcomes import Outcome, read_outcomes
from longcurate.ablate.report import markdown, report_data, verdict
from longcurate.core.jsonl import write_jsonl
from longcurate.core.stats import bootstrap_mean, paired_comparison

ITEMS = [("probe", f"p{i}", i / 10) for i in range(10)] + [("heldout", f"h{i}", (i + 0.5) / 6) for i in range(6)]


def outcomes(shift: float, seed: int, skip: str | None = None, jitter: float = 0.0) -> dict[str, Outcome]:
    out = {}
    for n, (src, iid, pos) in enumerate(ITEMS):
        key = f"{src}:{iid}"
        if key != skip:
            value = 2.0 + 0.1 * ((n * 7) % 5) + shift + 0.03 * seed * ((-1) ** n) + jitter * ((n * 3) % 7 - 3)
            out[key] = Outcome(key, src, "t", pos, value)
    return out


def models(skip: str | None = None):
    return {"gateau": {"0": outcomes(-0.2, 0), "1": outcomes(-0.2, 1)},
            "random": {"0": outcomes(0.0, 0), "1": outcomes(0.0, 1, skip)},
            "length": {"0": outcomes(0.0, 0, jitter=0.1), "1": outcomes(0.0, 1, jitter=0.1)},
            "base": {"-": outcomes(0.5, 0)}}


def test_figures_match_a_hand_computation():
    m = measure_stats("nll", models(), baseline="random", buckets=4)
    keys = sorted(f"{s}:{i}" for s, i, _ in ITEMS)
    assert m.items == keys and m.dropped == 0 and m.items_by_source == {"heldout": 6, "probe": 10}
    gateau = [statistics.fmean([outcomes(-0.2, 0)[k].value, outcomes(-0.2, 1)[k].value]) for k in keys]
    random_ = [statistics.fmean([outcomes(0, 0)[k].value, outcomes(0, 1)[k].value]) for k in keys]
    row = m.rows["gateau"]
    assert row.mean == bootstrap_mean(gateau, seed=0)
    assert row.mean.mean == pytest.approx(sum(gateau) / len(gateau))
    assert row.vs_baseline == paired_comparison(gateau, random_, seed=0)
    assert row.vs_baseline.difference.mean == pytest.approx(-0.2)
    assert row.vs_baseline.difference.high < 0 and row.vs_baseline.p_value < 0.01
    seed_means = [statistics.fmean(outcomes(-0.2, s)[k].value for k in keys) for s in (0, 1)]
    assert row.seed_means == {"0": seed_means[0], "1": seed_means[1]}
    assert row.seed_std == pytest.approx(statistics.stdev(seed_means))
    assert m.rows["random"].vs_baseline is None and m.rows["base"].seed_std is None
    held = [v for k, v in zip(keys, gateau) if k.startswith("heldout:")]
    assert row.by_source["heldout"] == bootstrap_mean(held, seed=0)
    # Position buckets of width 1/4: probe positions 0, .1, ..., .9 and held-out (i + .5) / 6.
    assert m.bucket_items == [3 + 1, 2 + 2, 3 + 1, 2 + 2]  # probes + held-out per bucket
    position = {f"{s}:{i}": p for s, i, p in ITEMS}
    first = [j for j, k in enumerate(keys) if bucket_of(position[k], 4) == 0]
    assert row.by_position[0] == bootstrap_mean([gateau[j] for j in first], seed=0)
    assert row.vs_baseline_by_position[0] == paired_comparison([gateau[j] for j in first],
                                                               [random_[j] for j in first], seed=0)
    assert m.rows["random"].vs_baseline_by_position == [None] * 4


def test_an_item_missing_from_one_run_leaves_every_figure():
    m = measure_stats("nll", models(skip="probe:p3"), baseline="random", buckets=2)
    assert "probe:p3" not in m.items and m.dropped == 1 and m.rows["gateau"].mean.n == len(ITEMS) - 1


def test_bucket_of_edges():
    assert [bucket_of(p, 4) for p in (0.0, 0.24999, 0.25, 0.99, 1.0, None)] == [0, 0, 1, 3, 3, None]


def test_outcomes_read_from_the_eval_files(tmp_path):
    write_jsonl(tmp_path / "nll" / "items.jsonl", [
        {"id": "a", "source": "probe", "task": "document", "position": 0.25, "nll": 1.5, "n_tokens": 4},
        {"id": "a", "source": "heldout", "task": "fine", "position": 0.5, "nll": 2.5, "n_tokens": 9}])
    write_jsonl(tmp_path / "probes" / "predictions.jsonl", [
        {"id": "a", "task": "document", "key_token_fraction": 0.3, "pred": "x", "score": 0.5}])
    nll = read_outcomes(tmp_path, "nll")
    assert nll == {"probe:a": Outcome("probe:a", "probe", "document", 0.25, 1.5),
                   "heldout:a": Outcome("heldout:a", "heldout", "fine", 0.5, 2.5)}
    assert read_outcomes(tmp_path, "probes") == {"probe:a": Outcome("probe:a", "probe", "document", 0.3, 0.5)}


def comparison(mean: float, low: float, high: float, p: float) -> dict:
    return {"difference": {"mean": mean, "low": low, "high": high, "n": 30}, "p_value": p}


def test_verdict_claims_a_difference_only_when_the_interval_excludes_zero():
    better = verdict("gateau", "random", "nll", comparison(-0.2, -0.3, -0.1, 0.001))
    assert "excludes 0" in better and "lower (better)" in better
    worse = verdict("length", "random", "nll", comparison(0.2, 0.1, 0.3, 0.01))
    assert "higher (worse)" in worse
    acc = verdict("gateau", "random", "probes", comparison(0.2, 0.1, 0.3, 0.01))
    assert "higher (better)" in acc
    unclear = verdict("gateau", "random", "nll", comparison(-0.2, -0.5, 0.1, 0.2))
    assert "includes 0" in unclear and "better" not in unclear and "worse" not in unclear


def test_report_states_the_primary_measure_and_its_direction():
    m = measure_stats("nll", models(), baseline="random", buckets=4)
    setup = {"pool_samples": 50, "arms": ["gateau", "random", "length"], "budget": 10.0, "budget_unit": "samples",
             "seeds": [0, 1], "base_model": "m", "max_steps": 4, "global_batch": 2, "short_samples": 8,
             "baseline": "random"}
    arms = {a: {"file": f"arms/{a}.jsonl", "samples": 10, "tokens": 1000, "trained": {"long_tokens": 500.0}}
            for a in ("gateau", "random", "length")}
    data = report_data(setup, arms, {"nll": m})
    assert data["primary"] == {"measure": "nll", "better": "lower", "what": "answer NLL, nats per answer token"}
    text = markdown(data, {})
    assert "Primary measure: `nll`" in text and "lower is better" in text
    assert "`gateau` − `random`" in text and "interval excludes 0" in text
    assert "`length` − `random`" in text and "interval includes 0" in text
