"""The audit's statistics on a hand-made score table: top-k shares (ties at the cut shared), AUROC
against sklearn.metrics.roc_auc_score, Spearman against scipy.stats.spearmanr, the cluster bootstrap
keeping a base sample's variants together, and the criteria marks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from longcurate.select.audit_config import AuditCriteria
from longcurate.select.audit_figures import Item, ifd_score
from longcurate.select.audit_report import criteria_rows, format_criteria, markdown
from longcurate.select.audit_stats import cluster_bootstrap, figure_report, statistics, top_k_shares

TYPES = ["far", "local", "absent", "wrong"]
# base -> (far, local, absent, wrong) scores; response tokens per base; far's evidence offset per base
TABLE = {
    "b1": ((0.90, 0.40, 0.10, 0.50), 3, 400),
    "b2": ((0.80, 0.85, 0.20, 0.30), 12, 100),
    "b3": ((0.70, 0.60, 0.65, 0.05), 7, 250),
    "b4": ((0.30, 0.20, 0.35, 0.95), 25, 50),
}


@pytest.fixture
def table():
    items, scores = [], []
    for base, (values, tokens, offset) in TABLE.items():
        for t, v in zip(TYPES, values):
            items.append(Item(f"{base}.{t}", t, base, tokens + TYPES.index(t), offset if t == "far" else None))
            scores.append(v)
    return items, np.array(scores)


def test_top_k_shares_by_hand(table):
    items, scores = table
    types = np.array([it.type for it in items])
    # top 4: b4.wrong .95, b1.far .90, b2.local .85, b2.far .80
    assert top_k_shares(scores, types, 4, TYPES) == {"far": 0.5, "local": 0.25, "absent": 0.0, "wrong": 0.25}


def test_ties_at_the_cut_share_the_places_left():
    scores = np.array([3.0, 2.0, 2.0, 2.0, 1.0, 1.0])
    types = np.array(["far", "far", "local", "wrong", "local", "wrong"])
    # k = 3: far (3.0) is in; three samples tied at 2.0 share the two places left (2/3 each)
    got = top_k_shares(scores, types, 3, ["far", "local", "wrong"])
    assert got == pytest.approx({"far": (1 + 2 / 3) / 3, "local": (2 / 3) / 3, "wrong": (2 / 3) / 3})
    assert sum(top_k_shares(np.ones(8), np.array(["far", "local"] * 4), 4, ["far", "local"]).values()) == pytest.approx(1)
    assert top_k_shares(np.ones(8), np.array(["far", "local"] * 4), 4, ["far", "local"])["far"] == pytest.approx(0.5)


def test_aurocs_and_spearman_match_sklearn_and_scipy(table):
    items, scores = table
    st = statistics(scores, items, "far", TYPES)
    types = np.array([it.type for it in items])
    for other in ("local", "absent", "wrong"):
        both = (types == "far") | (types == other)
        assert st["auroc"][other] == pytest.approx(roc_auc_score(types[both] == "far", scores[both]))
    # by hand: far (.9 .8 .7 .3) vs local (.4 .85 .6 .2): far wins 4 + 3 + 3 + 1 = 11 of 16 pairs
    assert st["auroc"]["local"] == pytest.approx(11 / 16)
    tokens = np.array([it.response_tokens for it in items])
    for t in TYPES:
        assert st["spearman_response_tokens"][t] == pytest.approx(spearmanr(scores[types == t], tokens[types == t]).statistic)
    assert st["spearman_response_tokens"]["far"] == pytest.approx(-0.8)  # far scores fall as answers grow (one swap)
    offsets = np.array([TABLE[b][2] for b in TABLE])
    assert st["spearman_evidence_offset_far"] == pytest.approx(spearmanr(scores[types == "far"], offsets).statistic)


def test_cluster_bootstrap_draws_whole_base_samples(table):
    items, _ = table
    seen = cluster_bootstrap(items, lambda idx: {"bases": [items[i].base for i in idx]}, 50, seed=0)
    for draw in seen:
        counts = {b: draw["bases"].count(b) for b in set(draw["bases"])}
        assert all(c % len(TYPES) == 0 for c in counts.values())  # every variant of a drawn base came along
        assert len(draw["bases"]) == len(items)


def test_intervals_cover_the_point_estimates(table):
    items, scores = table
    rep = figure_report(scores, items, "far", TYPES, resamples=300, seed=1)
    for other, (lo, hi) in rep["auroc_ci"].items():
        assert lo <= rep["auroc"][other] <= hi
    for t, (lo, hi) in rep["top_k_ci"].items():
        assert 0 <= lo <= hi <= 1


def test_criteria_marks(table):
    items, scores = table
    rep = figure_report(scores, items, "far", TYPES, resamples=200, seed=1)
    per_figure = {"gateau-rank": rep, "hmg-ppl": rep, "cas-cos": rep}
    rows = criteria_rows(per_figure, {"gateau": "gateau-rank", "hmg": "hmg-ppl", "cas": "cas-cos"},
                         AuditCriteria(), TYPES)
    marks = {(r["role"], r["criterion"].split(" ")[0]): r["passed"] for r in rows}
    assert len(rows) == 11
    assert marks[("gateau", "`far`")] is False  # 50% < 60%
    assert marks[("gateau", "AUROC(far")] is False  # 11/16 = 0.69 < 0.80
    assert marks[("gateau", "`absent`")] is True and marks[("gateau", "`wrong`")] is False  # 0% and 25%
    assert marks[("cas", "AUROC(far")] is True  # far vs absent: 14/16 = 0.88 >= 0.70
    text = format_criteria(rows)
    assert "PASS" in text and "FAIL" in text
    # without a `far` type (data without gold) the position criteria are not applicable
    rows = criteria_rows(per_figure, {"gateau": "gateau-rank", "hmg": "hmg-ppl", "cas": "cas-cos"},
                         AuditCriteria(), ["natural", "absent", "wrong"])
    assert [r["passed"] for r in rows if "far" in r["criterion"]] == [None] * 7


def test_markdown_escapes_the_absolute_value_bars(table):
    items, scores = table
    rep = figure_report(scores, items, "far", TYPES, resamples=100, seed=1)
    rows = criteria_rows({"g": rep, "h": rep, "c": rep}, {"gateau": "g", "hmg": "h", "cas": "c"}, AuditCriteria(), TYPES)
    result = {"types": TYPES, "reference": "far", "k": 4, "records": 16, "base_samples": 4, "left_out_base_samples": 0,
              "criteria": rows, "figures": {"g": rep},
              "pool": {t: {"records": 4, "mean_response_tokens": 1.0, "mean_tokens": 2.0, "evidence_offset": None}
                       for t in TYPES},
              "settings": {"model_b": "m", "model_a": None, "window": 512, "rope_scaling": None, "audit_window": 512,
                           "margin": 32, "prompt_format": "chat", "max_segments": 8, "seed": 0, "bootstrap": 100}}
    md = markdown(result, "audit.png")
    for line in md.splitlines():
        if line.startswith("| `g` | &#124;Spearman"):
            assert line.count("|") == 5
            break
    else:
        raise AssertionError("criteria row missing")


def test_ifd_score_orders_as_cherry_does():
    from longcurate.select.budget import ifd_key

    values = [0.2, 0.9, 1.0, 1.3, 3.0, 0.5]
    by_key = sorted(range(len(values)), key=lambda i: ifd_key(values[i], str(i)))
    by_score = sorted(range(len(values)), key=lambda i: -ifd_score(values[i]))
    assert by_key == by_score
