"""The audit's statistics of one figure over the planted pool:

- the share of each type in the top k (k = pool size / number of types: a perfect detector of the
  reference type fills the top k with it); samples tied at the cut share the remaining places;
- AUROC of the reference type (`far`, or `natural` for data without gold) against each other type
  (`sklearn.metrics.roc_auc_score`; 1 = every reference sample scores above every other);
- Spearman's rho (`scipy.stats.spearmanr`) with the response's token count inside each type (a
  score that is an answer-length proxy shows it in every type), and with the evidence's distance
  beyond θ_A's view inside `far`.

Intervals are 95% percentile intervals of a cluster bootstrap over base samples: a resample draws base
samples with replacement and keeps all of each one's planted variants, since the variants of one base
sample are paired (same text, question or answer) and are not independent draws.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from longcurate.select.audit_figures import Item

CONFIDENCE = 0.95


def top_k_shares(scores: np.ndarray, types: np.ndarray, k: int, names: list[str]) -> dict[str, float]:
    """Each type's share of the k highest scores; the samples tied at the k-th score share the places
    left at the cut in proportion (so a constant score gives every type its share of the pool)."""
    scores = np.asarray(scores, dtype=np.float64)
    cut = np.sort(scores)[::-1][k - 1]
    above = scores > cut
    tied = scores == cut
    weight = above.astype(np.float64) + tied * ((k - above.sum()) / tied.sum())
    return {t: float(weight[types == t].sum() / k) for t in names}


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """AUROC of `positive` against the rest (ties count one half); nan without both classes."""
    from sklearn.metrics import roc_auc_score

    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, scores))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho; nan for fewer than 3 pairs or a constant side."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(spearmanr(x, y).statistic)


def statistics(scores: np.ndarray, items: list[Item], reference: str, names: list[str]) -> dict[str, Any]:
    """The point estimates of one figure (see the module docstring)."""
    types = np.array([it.type for it in items])
    k = len(items) // len(names)
    out: dict[str, Any] = {"top_k": top_k_shares(scores, types, k, names), "auroc": {},
                           "spearman_response_tokens": {}}
    for other in names:
        if other != reference:
            both = (types == reference) | (types == other)
            out["auroc"][other] = auroc(scores[both], types[both] == reference)
    tokens = np.array([it.response_tokens for it in items], dtype=np.float64)
    for t in names:
        out["spearman_response_tokens"][t] = spearman(scores[types == t], tokens[types == t])
    far = [(s, it.evidence_offset) for s, it in zip(scores, items) if it.type == "far" and it.evidence_offset is not None]
    out["spearman_evidence_offset_far"] = spearman(*map(np.array, zip(*far))) if far else float("nan")
    return out


def cluster_bootstrap(items: list[Item], stat: Callable[[np.ndarray], dict[str, Any]], resamples: int,
                      seed: int) -> list[dict[str, Any]]:
    """`stat(indices)` on `resamples` resamples of the base samples (with replacement, each bringing
    all its items)."""
    bases = sorted({it.base for it in items})
    members: dict[str, list[int]] = {b: [] for b in bases}
    for i, it in enumerate(items):
        members[it.base].append(i)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(resamples):
        drawn = rng.integers(0, len(bases), len(bases))
        out.append(stat(np.array([i for b in drawn for i in members[bases[b]]])))
    return out


def interval(values: list[float]) -> list[float]:
    """The 95% percentile interval of the finite values (nan when none)."""
    v = np.array([x for x in values if isinstance(x, float) and math.isfinite(x)])
    if not len(v):
        return [float("nan"), float("nan")]
    lo, hi = np.quantile(v, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return [float(lo), float(hi)]


def figure_report(scores: np.ndarray, items: list[Item], reference: str, names: list[str], resamples: int,
                  seed: int) -> dict[str, Any]:
    """Point estimates with 95% intervals for the top-k shares and the AUROCs."""
    point = statistics(scores, items, reference, names)

    def stat(idx: np.ndarray) -> dict[str, Any]:
        types = np.array([items[i].type for i in idx])
        k = len(idx) // len(names)
        sub = scores[idx]
        res = {"top_k": top_k_shares(sub, types, k, names), "auroc": {}}
        for other in point["auroc"]:
            both = (types == reference) | (types == other)
            res["auroc"][other] = auroc(sub[both], types[both] == reference)
        return res

    boot = cluster_bootstrap(items, stat, resamples, seed)
    point["top_k_ci"] = {t: interval([b["top_k"][t] for b in boot]) for t in names}
    point["auroc_ci"] = {o: interval([b["auroc"][o] for b in boot]) for o in point["auroc"]}
    return point


__all__ = ["top_k_shares", "auroc", "spearman", "statistics", "cluster_bootstrap", "interval", "figure_report",
           "CONFIDENCE"]
