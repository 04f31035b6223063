"""rank (both normalize modes), budgets and baselines, diagnose's AUROC — on hand-made score files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from longcurate.core.records import Sample
from longcurate.core.layout import parse_budget
from longcurate.select.budget import budget_size, write_budgets
from longcurate.select.diagnose import auroc, diagnose
from longcurate.select.rank import percentile, rank_scores, spearman

HMG = [{"id": "a", "hmg": 0.9}, {"id": "b", "hmg": -0.5}, {"id": "c", "hmg": 0.1}, {"id": "d", "hmg": 0.4}]
CAM = [{"id": "a", "cas": 0.1}, {"id": "b", "cas": 0.8}, {"id": "c", "cas": 0.3}, {"id": "d", "cas": 0.2}]


def test_rank_paper_mode_is_softmax_plus_cas():
    ranked, stats = rank_scores(HMG, CAM, alpha=0.8, normalize="paper")
    h = np.array([r["hmg"] for r in HMG])
    soft = np.exp(h) / np.exp(h).sum()
    want = {r["id"]: 0.8 * s + 0.2 * c["cas"] for r, s, c in zip(HMG, soft, CAM)}
    assert [r["id"] for r in ranked] == sorted(want, key=lambda i: -want[i])
    for r in ranked:
        assert r["score"] == pytest.approx(want[r["id"]])
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4]
    assert stats["spearman_score_hmg"] == pytest.approx(spearman([want[i] for i in "abcd"], soft))


def test_rank_percentile_mode():
    ranked, stats = rank_scores(HMG, CAM, alpha=0.5, normalize="rank")
    # percentiles: hmg a=1, d=.75, c=.5, b=.25; cas b=1, c=.75, d=.5, a=.25
    want = {"a": 0.625, "b": 0.625, "c": 0.625, "d": 0.625}
    for r in ranked:
        assert r["score"] == pytest.approx(want[r["id"]])
    assert [r["id"] for r in ranked] == ["a", "b", "c", "d"]  # ties break by id
    ranked, _ = rank_scores(HMG, CAM, alpha=1.0, normalize="rank")
    assert [r["id"] for r in ranked] == ["a", "d", "c", "b"]


def test_rank_imputes_missing_cas():
    ranked, stats = rank_scores(HMG, CAM[:2], alpha=0.5, normalize="paper")
    assert stats["cas_missing"] == 2
    imputed = [r for r in ranked if r.get("cas_imputed")]
    assert {r["id"] for r in imputed} == {"c", "d"}
    assert all(r["cas_term"] == pytest.approx(0.45) and r["cas"] is None for r in imputed)


def test_ranks_and_spearman():
    assert (percentile([3, 1, 2, 2]) * 4).tolist() == [4.0, 1.0, 2.5, 2.5]
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def _samples(ids):
    return {i: Sample.from_dict({"id": i, "context": "c" * (10 * (k + 1)), "instruction": "q", "response": "r",
                                 "length": 10 * (k + 1)}) for k, i in enumerate(ids)}


def test_budgets_and_baselines(tmp_path):
    ranked, _ = rank_scores(HMG, CAM, alpha=0.8, normalize="paper")
    samples = _samples("abcd")
    written = write_budgets(ranked, samples, tmp_path, [2, 0.5, 10], ["gateau", "random", "hmg-only",
                                                                      "cam-only", "length"], seed=0)
    assert written["gateau-2.jsonl"] == 2 and written["gateau-0.5.jsonl"] == 2
    assert written["gateau-4.jsonl"] == 4 and "gateau-10.jsonl" not in written  # capped: named by its real size
    read = lambda name: [json.loads(x)["id"] for x in (tmp_path / name).read_text().splitlines()]  # noqa: E731
    assert read("gateau-2.jsonl") == [r["id"] for r in ranked[:2]]
    assert read("hmg-only-2.jsonl") == ["a", "d"]
    assert read("cam-only-2.jsonl") == ["b", "c"]
    assert read("length-2.jsonl") == ["d", "c"]
    rnd = read("random-4.jsonl")
    assert sorted(rnd) == list("abcd")
    # full sample records, readable by Sample.from_dict
    line = json.loads((tmp_path / "gateau-2.jsonl").read_text().splitlines()[0])
    assert Sample.from_dict(line).id == ranked[0]["id"] and "messages" in line
    with pytest.raises(ValueError, match="larger than"):
        write_budgets(ranked, samples, tmp_path, [10], ["gateau"], overflow="error")


def test_parse_budget():
    assert parse_budget(1000) == ("1000", 1000.0)
    assert parse_budget("0.1") == ("0.1", 0.1)
    assert budget_size(0.1, 25) == 3
    with pytest.raises(ValueError):
        parse_budget(2.5)
    with pytest.raises(ValueError):
        parse_budget(0)


def test_auroc_known_values():
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    # one inversion out of 2 x 2 pairs
    assert auroc([0.9, 0.3, 0.5, 0.1], [True, True, False, False]) == pytest.approx(0.75)
    assert math.isnan(auroc([0.1, 0.2], [True, True]))


def test_diagnose_counts():
    kinds = {"a": "fine", "b": "fine", "c": "fine", "d": "multihop"}
    cam = [{"id": "a", "importance": [0.1, 0.7, 0.2], "segment_attn": [0.5, 0.3, 0.2], "gold_segments": [1]},
           {"id": "b", "importance": [0.6, 0.3, 0.1], "segment_attn": [0.6, 0.3, 0.1], "gold_segments": [0]},
           {"id": "c", "importance": [0.6, 0.3, 0.1], "segment_attn": [0.1, 0.3, 0.6], "gold_segments": []},
           {"id": "d", "importance": [0.2, 0.8], "segment_attn": [0.9, 0.1], "gold_segments": [0, 1]}]
    hmg = [{"id": "a", "hmg": 0.9, "gold_beyond_window": True}, {"id": "b", "hmg": 0.1, "gold_beyond_window": False},
           {"id": "c", "hmg": 0.5, "gold_beyond_window": True}, {"id": "d", "hmg": 0.2, "gold_beyond_window": False}]
    d = diagnose(kinds, hmg, cam)
    assert d["top_importance_gold"] == 1.0 and d["top_importance_gold_n"] == 2
    assert d["top_attention_gold"] == 0.5
    assert d["gold_not_kept_fine"] == 1
    assert d["top_importance_gold_multihop"] == 1.0
    assert d["hmg_auroc_gold_beyond_window"] == 1.0
    assert "hmg_log_auroc_gold_beyond_window" not in d  # no NLLs stored: no log-scale figure
    for r, (na, nb) in zip(hmg, [(3.0, 1.0), (1.0, 1.0), (2.5, 1.0), (1.2, 1.0)]):
        r["nll_a"], r["nll_b"] = na, nb
    assert diagnose(kinds, hmg, cam)["hmg_log_auroc_gold_beyond_window"] == 1.0


def test_diagnose_without_gold_says_so(tmp_path, capsys):
    """LongAlign-style samples carry no gold spans: the report says there is nothing to check the scores
    against and gives only the CAS figures (not "gold segment not kept: 5")."""
    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from longcurate.select.stage import run_diagnose

    from .conftest import write_jsonl

    samples = [{"messages": [{"role": "user", "content": f"Context {i}.\n\nQuestion {i}?"},
                             {"role": "assistant", "content": f"Answer {i}."}]} for i in range(5)]
    write_jsonl(tmp_path / "in.jsonl", samples)
    cfg = build(RunConfig, {"output_dir": str(tmp_path / "run"), "select": {"input": str(tmp_path / "in.jsonl")}})
    from longcurate.core.records import content_id

    ids = [content_id(s) for s in samples]
    write_jsonl(tmp_path / "hmg.jsonl", [{"id": i, "hmg": 0.1 * k, "n_tokens": 100 + 10 * k} for k, i in enumerate(ids)])
    write_jsonl(tmp_path / "cam.jsonl", [{"id": i, "cas": 0.2 + 0.01 * k, "importance": [0.5] + [0.5 / (k + 1)] * (k + 1),
                                          "segment_attn": [1.0 / (k + 2)] * (k + 2), "gold_segments": []}
                                         for k, i in enumerate(ids)])
    d = run_diagnose(cfg, tmp_path / "hmg.jsonl", tmp_path / "cam.jsonl")
    report = capsys.readouterr().out
    assert "no gold spans in the input" in report and "not kept" not in report and "beyond the short window" not in report
    assert d["gold_samples"] == 0 and d["cas_n"] == 5
    assert not any(k.startswith(("top_", "hmg_auroc", "gold_not_kept")) for k in d)
    assert json.loads((tmp_path / "run/select/diagnostics.json").read_text()) == d


def test_length_order_uses_token_counts_and_never_a_missing_length_as_zero():
    """Samples whose input has no `length`: the `length` order comes from the scoring pass's token
    counts; with none at all it stops, naming the samples (not 0 for all, i.e. file order)."""
    from longcurate.core.errors import UserError
    from longcurate.select.budget import token_counts

    samples = {i: Sample(i, "c", "q", "r", []) for i in ("a", "b", "c")}
    ranked = [{"id": i, "hmg": 0.0} for i in ("a", "b", "c")]
    assert token_counts(ranked, samples, {"a": 5, "b": 50, "c": 20}, True) == {"a": 5, "b": 50, "c": 20}
    samples["c"].length = 70  # the input's own length where scoring has no count
    assert token_counts(ranked, samples, {"a": 5, "b": 50}, True) == {"a": 5, "b": 50, "c": 70}
    with pytest.raises(UserError, match="no token count"):
        token_counts(ranked, samples, {"a": 5}, True)
    assert token_counts(ranked, samples, None, False) == {"c": 70}  # not needed: no error
