"""Ranks, Spearman and AUROC come from scipy.stats / scikit-learn; these pin the figures the project's
own implementations gave (computed with them before the switch, on the data below), so the switch
changes no ranking and no reported figure beyond the last bits of a float."""

from __future__ import annotations

import math

import numpy as np
import pytest

from longcurate.select.diagnose import auroc
from longcurate.select.rank import percentile, rank_scores, spearman

# Rounded to one decimal, so that ties are many (seeded normal draws, numpy default_rng(19)).
X = [-0.4, 1.0, 0.4, -0.6, 0.7, -1.5, 0.6, -0.6, 0.6, 0.4, -0.8, 0.5, 0.3, -0.6, 2.0, 0.8, -1.2, -1.0, 0.3, 0.3,
     -0.7, 1.2, 0.1, -0.9, -0.4, -0.2, -1.6, -0.8, -1.8, -0.3, 0.6, -1.3, 0.3, -1.2, -0.2, -0.5, -1.2, -0.5, -1.2, 0.3]
Y = [-0.2, 1.7, -1.3, 0.8, 0.3, -0.3, 0.1, 1.2, 1.7, 1.3, -0.1, -2.1, 0.7, -0.3, 0.9, 0.8, 0.6, -0.2, -0.3, -0.6,
     0.0, 1.7, 0.6, 0.0, -0.7, -1.3, 0.1, 0.2, -2.7, -0.9, 1.3, 0.4, -0.5, 1.7, 1.3, 0.7, -0.7, -1.6, 0.2, 1.9]
LABELS = [False, False, False, True, False, False, False, True, False, False, False, True, False, True, True, True,
          False, False, False, False, True, False, False, True, True, False, True, True, False, True, False, True,
          False, False, True, True, False, True, False, False]
SCORES = [0.8, 0.4, 0.8, 1.2, 0.9, 0.3, 0.2, 0.4, 0.2, 0.6, 0.3, 0.8, 0.9, 0.9, 0.7, 0.4, 0.6, 0.4, 0.1, 0.6, 0.9,
          0.9, 0.0, 0.4, 0.6, 0.2, 0.4, 0.4, 0.6, 0.8, 0.1, 0.5, 0.2, 0.5, 0.8, 1.0, 0.7, 1.2, 0.4, 0.1]
# The hand-written average ranks of X (ties share their mean rank).
RANKS = [19.5, 38.0, 30.5, 15.0, 36.0, 3.0, 34.0, 15.0, 34.0, 30.5, 11.5, 32.0, 27.0, 15.0, 40.0, 37.0, 6.5, 9.0,
         27.0, 27.0, 13.0, 39.0, 24.0, 10.0, 19.5, 22.5, 2.0, 11.5, 1.0, 21.0, 34.0, 4.0, 27.0, 6.5, 22.5, 17.5,
         6.5, 17.5, 6.5, 27.0]
TOL = 1e-12  # relative: scipy sums in another order than the hand-written Pearson-on-ranks did


def test_percentile_ranks_equal_the_old_average_ranks_exactly():
    assert (percentile(X) * len(X)).tolist() == RANKS


def test_spearman_and_auroc_equal_the_old_figures():
    assert spearman(X, Y) == pytest.approx(0.30729420475275027, rel=TOL)
    assert auroc(SCORES, LABELS) == 0.7356770833333334  # exact: a ratio of pair counts


def test_ranking_equals_the_old_ranking():
    hmg = [{"id": f"s{i:02d}", "hmg": v} for i, v in enumerate(X)]
    cam = [{"id": f"s{i:02d}", "cas": v} for i, v in enumerate(Y) if i % 5]  # 8 without CAS (imputed)
    old = {  # normalize -> (first ten ids, best score, worst score, the three Spearman figures)
        "rank": (["s21", "s01", "s14", "s08", "s15", "s04", "s09", "s39", "s30", "s06"], 0.9590625, 0.026875,
                 (0.955632619662646, 0.5286349311770676, 0.25994519219229606)),
        "paper": (["s39", "s21", "s01", "s08", "s33", "s09", "s34", "s14", "s07", "s03"], 0.590348600522443,
                  -0.8075081830600751, (0.30276886570121947, 0.9981655401878103, 0.25994519219229606)),
    }
    for normalize, (first, best, worst, rhos) in old.items():
        ranked, stats = rank_scores(hmg, cam, alpha=0.7, normalize=normalize)
        assert [r["id"] for r in ranked[:10]] == first
        assert (ranked[0]["score"], ranked[-1]["score"]) == (best, worst)  # the scores are bit-identical
        got = (stats["spearman_score_hmg"], stats["spearman_score_cas"], stats["spearman_hmg_cas"])
        assert got == pytest.approx(rhos, rel=TOL)


def test_undefined_figures_are_nan():
    assert math.isnan(spearman([1.0], [2.0]))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))  # a constant side: no correlation to speak of
    assert math.isnan(auroc([0.1, 0.2], [True, True]))
    assert math.isnan(auroc([0.1, 0.2], [False, False]))


def test_auroc_counts_ties_one_half():
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc(np.array([0.9, 0.3, 0.5, 0.1]), [True, True, False, False]) == pytest.approx(0.75)
