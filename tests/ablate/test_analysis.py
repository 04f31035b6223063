"""The ablation's statistics and report from per-item outcomes: each arm a [subset, seed, item] table,
cluster-bootstrap intervals and differences against random (the control paired by subset), Holm over
the arms compared, the share of random draws an arm beats, variance components, breakdowns by question
type and position, and sentences that claim a difference only when the adjusted p-value allows it and
draw no conclusion unless the positive control is detectably worse."""

from __future__ import annotations

import numpy as np
import pytest

from longcurate.ablate.analysis import Design, bucket_of, measure_stats
from longcurate.ablate.outcomes import Outcome, read_outcomes
from longcurate.ablate.report import markdown, quality_check, report_data, verdict
from longcurate.core.jsonl import write_jsonl
from longcurate.core.replication import cluster_difference, cluster_mean, holm, variance_components

ITEMS = [("probe", f"p{i}", i / 10, "document" if i % 2 else "code") for i in range(10)] + \
        [("heldout", f"h{i}", (i + 0.5) / 6, "fine") for i in range(6)]


def outcomes(shift: float, model: int, skip: str | None = None) -> dict[str, Outcome]:
    out = {}
    for n, (src, iid, pos, task) in enumerate(ITEMS):
        key = f"{src}:{iid}"
        if key != skip:
            value = 2.0 + 0.1 * ((n * 7) % 5) + shift + 0.03 * model * ((-1) ** n) + 0.01 * ((n * model) % 3)
            out[key] = Outcome(key, src, task, pos, value)
    return out


def models(skip: str | None = None, control_shift: float = 0.3):
    subset = {0: 0.0, 1: 0.05, 2: -0.04}  # the random draws differ
    return {"gateau": {(None, "0"): outcomes(-0.2, 0), (None, "1"): outcomes(-0.2, 1)},
            "random": {(k, s): outcomes(subset[k], 2 * k + int(s), skip if (k, s) == (1, "1") else None)
                       for k in subset for s in ("0", "1")},
            "control-wrong": {(k, s): outcomes(subset[k] + control_shift, 2 * k + int(s)) for k in subset
                              for s in ("0", "1")},
            "length": {(None, "0"): outcomes(0.01, 7), (None, "1"): outcomes(0.01, 8)},
            "base": {(None, "-"): outcomes(0.5, 0)}}


def qtype(o: Outcome) -> str:
    return f"{o.source} {o.task}"


DESIGN = Design("random", "control-wrong", "lower", 0.05, 0.8, 4, 2000, qtype)


def table(per: dict, keys: list[str]) -> np.ndarray:
    subsets = sorted({k for k, _ in per}, key=lambda k: -1 if k is None else k)
    seeds = sorted({s for _, s in per})
    return np.array([[[per[(k, s)][i].value for i in keys] for s in seeds] for k in subsets])


def test_figures_match_the_replication_statistics():
    data = models()
    m = measure_stats("nll", data, DESIGN)
    keys = sorted(f"{s}:{i}" for s, i, _, _ in ITEMS)
    assert m.items == keys and m.dropped == 0 and m.items_by_source == {"heldout": 6, "probe": 10}
    assert m.items_by_type == {"heldout fine": 6, "probe code": 5, "probe document": 5}
    t = {arm: table(per, keys) for arm, per in data.items()}
    row = m.rows["gateau"]
    assert (row.subsets, row.seeds) == (1, 2) and (m.rows["random"].subsets, m.rows["random"].seeds) == (3, 2)
    assert row.mean == cluster_mean(t["gateau"], resamples=2000, seed=0)
    d = cluster_difference(t["gateau"], t["random"], resamples=2000, seed=0)
    assert row.vs_baseline.difference == d.difference and row.vs_baseline.p_value == d.p_value
    assert row.vs_baseline.difference.mean == pytest.approx(-0.2 - 0.01 / 3, abs=0.02)
    control = cluster_difference(t["control-wrong"], t["random"], paired_subsets=True, resamples=2000, seed=0)
    assert m.rows["control-wrong"].vs_baseline.difference == control.difference
    family = ["gateau", "control-wrong", "length"]  # trained arms other than random; not the base model
    adjusted = holm([m.rows[a].vs_baseline.p_value for a in family])
    assert [m.rows[a].vs_baseline.p_holm for a in family] == adjusted
    assert m.rows["base"].vs_baseline.p_holm is None and m.rows["random"].vs_baseline is None
    assert row.vs_baseline.beats_random_subsets == 100.0  # lower than every random draw
    assert m.rows["control-wrong"].vs_baseline.beats_random_subsets is None  # a drawn arm is not placed
    others = [t[a] for a in ("gateau", "control-wrong", "length")]
    assert m.components == variance_components(t["random"], others)
    assert row.model_means == {"seed-0": pytest.approx(t["gateau"][0, 0].mean()),
                               "seed-1": pytest.approx(t["gateau"][0, 1].mean())}
    assert set(m.rows["random"].model_means) == {f"subset-{k}/seed-{s}" for k in range(3) for s in range(2)}


def test_breakdowns_by_type_and_position():
    m = measure_stats("nll", models(), DESIGN)
    keys = m.items
    pos = {f"{s}:{i}": p for s, i, p, _ in ITEMS}
    assert m.bucket_items == [3 + 1, 2 + 2, 3 + 1, 2 + 2]  # probes + held-out per bucket of width 1/4
    first = [j for j, k in enumerate(keys) if bucket_of(pos[k], 4) == 0]
    t = {arm: table(per, keys) for arm, per in models().items()}
    assert m.rows["gateau"].vs_baseline_by_position[0] == cluster_difference(
        t["gateau"][:, :, first], t["random"][:, :, first], resamples=2000, seed=0)
    code = [j for j, k in enumerate(keys) if k.startswith("probe:") and int(k[7:]) % 2 == 0]
    assert m.rows["gateau"].by_type["probe code"] == cluster_mean(t["gateau"][:, :, code], resamples=2000, seed=0)
    assert m.rows["random"].vs_baseline_by_type == {"heldout fine": None, "probe code": None, "probe document": None}


def test_an_item_missing_from_one_model_leaves_every_figure():
    m = measure_stats("nll", models(skip="probe:p3"), DESIGN)
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


def comparison(mean: float, low: float, high: float, p_holm: float) -> dict:
    return {"difference": {"mean": mean, "low": low, "high": high, "n": 30}, "p_value": p_holm / 3, "p_holm": p_holm}


def test_verdict_claims_a_difference_only_when_the_adjusted_p_value_allows():
    better = verdict("gateau", "random", "lower", comparison(-0.2, -0.3, -0.1, 0.001), 0.05)
    assert "lower (better)" in better
    worse = verdict("length", "random", "lower", comparison(0.2, 0.1, 0.3, 0.01), 0.05)
    assert "higher (worse)" in worse
    assert "higher (better)" in verdict("gateau", "random", "higher", comparison(0.2, 0.1, 0.3, 0.01), 0.05)
    # The unadjusted interval excludes 0, but the Holm-adjusted p-value does not clear alpha.
    unclear = verdict("gateau", "random", "lower", comparison(-0.2, -0.3, -0.01, 0.09), 0.05)
    assert "no difference detected" in unclear and "better" not in unclear and "worse" not in unclear


def setup(arms: list[str]) -> dict:
    return {"pool_samples": 50, "arms": arms, "budget": 10.0, "budget_unit": "response_tokens", "seeds": [0, 1],
            "subsets": 3, "base_model": "m", "max_steps": 4, "global_batch": 2, "short_samples": 8,
            "baseline": "random", "control": "control-wrong" if "control-wrong" in arms else None,
            "criteria": {"alpha": 0.05, "power": 0.8},
            "gateau": {"alpha": 0.8, "normalize": "rank", "hmg_scale": "ppl", "window": 512, "model_a": None}}


def arm_info(arms: list[str]) -> dict:
    return {a: {"files": [{"file": f"arms/{a}.jsonl"}], "samples": 10.0, "tokens": 1000.0, "response_tokens": 90.0,
                "trained": {"long_tokens": 500.0, "long_response_tokens": 50.0, "long_context_tokens": 450.0}}
            for a in arms}


@pytest.mark.parametrize("control_shift, detects", [(0.3, True), (0.0, False), (-0.3, False)])
def test_report_draws_a_conclusion_only_when_the_control_is_detectably_worse(control_shift, detects):
    arms = ["gateau", "random", "control-wrong", "length"]
    m = measure_stats("nll", models(control_shift=control_shift), DESIGN)
    data = report_data(setup(arms), arm_info(arms), {"nll": m})
    assert data["primary"] == {"measure": "nll", "better": "lower", "what": "answer NLL, nats per answer token"}
    readable, _ = quality_check(data["setup"], data["measures"]["nll"])
    assert readable is detects
    text = markdown(data, {})
    assert "Primary measure: `nll`" in text and "cluster bootstrap" in text and "Holm-adjusted" in text
    assert ("detects data quality" in text) is detects
    assert ("no selection conclusion" in text) is not detects
    assert "normalisation `rank`, HMG scale `ppl`" in text and "smallest difference" in text.lower()
    assert "probe code" in text and "response tokens seen" in text


def test_report_without_a_control_says_a_null_result_cannot_be_read():
    arms = ["gateau", "random", "length"]
    data = models()
    del data["control-wrong"]
    m = measure_stats("nll", data, Design("random", None, "lower", 0.05, 0.8, 4, 500, qtype))
    text = markdown(report_data(setup(arms), arm_info(arms), {"nll": m}), {})
    assert "No positive control in this run" in text and "no selection conclusion" in text


def test_report_says_when_the_fixed_steps_did_not_train_an_arm_as_its_file_holds():
    from longcurate.ablate.report import coverage_lines

    arms = arm_info(["gateau", "random", "length"])
    arms["gateau"]["trained"]["long_samples"] = 4.0  # of 10 in its file
    arms["random"]["trained"]["long_samples"] = 10.0
    arms["length"]["trained"]["long_samples"] = 14.0
    lines = coverage_lines(arms, setup(list(arms)))
    assert "- `gateau`: 4 long samples seen for 10 in its file (only part of its samples)." in lines
    assert "- `length`: 14 long samples seen for 10 in its file (some of its samples more than once)." in lines
    assert not any("`random`" in line for line in lines)
