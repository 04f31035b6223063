"""Rank samples by `score = α · hmg_term + (1 − α) · cas_term`.

`normalize: rank` (the default) uses the percentile rank of each term: both are spread uniformly over
(0, 1], so α is the share each one has in moving the order, whatever the scales of HMG and CAS.
`normalize: paper` reproduces the released `rank.py`: hmg_term = softmax of hmg over the whole dataset,
cas_term = CAS as is. Softmax terms are ~1/N each while CAS spreads over ~0.1, so CAS alone decides the
order there (on the demo data Spearman 1.00 with CAS, 0.28 with HMG). Every run reports the Spearman
correlation of the final score with each term, so users see which one decides. The ranked records also
carry the baselines' figures from the HMG file (`ifd`, `perplexity` = PPL(y | x) under θ_B) so that
`budget.method_orders` can order by them.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from scipy.stats import rankdata, spearmanr

from longcurate.core.errors import UserError

log = logging.getLogger("longcurate.select")

def spearman(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> float:
    """Spearman's rho (`scipy.stats.spearmanr`: Pearson on average ranks); nan for fewer than two
    pairs or when either side is constant (a correlation with nothing is not 0)."""
    if len(x) < 2:
        return float("nan")
    with warnings.catch_warnings():  # a constant side warns and gives nan: the nan is the answer
        warnings.simplefilter("ignore")
        return float(spearmanr(x, y).statistic)


def percentile(x: list[float] | np.ndarray) -> np.ndarray:
    """Average rank / N (`scipy.stats.rankdata`, ties share their average rank): in (0, 1], higher
    value -> higher percentile."""
    return rankdata(np.asarray(x, dtype=np.float64)) / max(len(x), 1)


def rank_scores(hmg: list[dict[str, Any]], cam: list[dict[str, Any]] | None, alpha: float = 0.8,
                normalize: str = "rank") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Join HMG and CAM records by id and rank (best first; ties by id). Samples without a CAS (CAM
    run on a subset, or skipped) get the mean cas_term of the others and are flagged `cas_imputed`."""
    if not hmg:
        raise UserError("no HMG scores to rank")
    ids = [str(r["id"]) for r in hmg]
    if len(set(ids)) != len(ids):
        raise UserError("HMG scores repeat an id")
    h = np.array([float(r["hmg"]) for r in hmg], dtype=np.float64)
    cas_by_id = {str(r["id"]): float(r["cas"]) for r in (cam or [])}
    have = np.array([i in cas_by_id for i in ids])
    c = np.array([cas_by_id.get(i, np.nan) for i in ids], dtype=np.float64)
    if normalize == "paper":
        e = np.exp(h - h.max())
        h_term = e / e.sum()
        c_term = c.copy()
    else:
        h_term = percentile(h)
        c_term = np.full(len(ids), np.nan)
        if have.any():
            c_term[have] = percentile(c[have])
    fill = float(np.nanmean(c_term)) if have.any() else 0.0
    c_term = np.where(have, c_term, fill)
    score = alpha * h_term + (1.0 - alpha) * c_term
    order = sorted(range(len(ids)), key=lambda i: (-score[i], ids[i]))
    ranked = []
    for pos, i in enumerate(order, start=1):
        rec = {"id": ids[i], "rank": pos, "score": float(score[i]), "hmg": float(h[i]),
               "cas": float(c[i]) if have[i] else None, "hmg_term": float(h_term[i]), "cas_term": float(c_term[i])}
        if not have[i]:
            rec["cas_imputed"] = True
        for key, src in (("ifd", "ifd"), ("perplexity", "ppl_b")):
            if src in hmg[i]:
                rec[key] = float(hmg[i][src])
        ranked.append(rec)
    stats = {"n": len(ids), "alpha": alpha, "normalize": normalize, "cas_missing": int((~have).sum()),
             "spearman_score_hmg": spearman(score, h_term),
             "spearman_score_cas": spearman(score[have], c_term[have]) if have.sum() > 1 else float("nan"),
             "spearman_hmg_cas": spearman(h[have], c[have]) if have.sum() > 1 else float("nan")}
    if stats["cas_missing"]:
        log.warning("rank: %d of %d samples have no CAS; their cas_term is the mean (%.4g)",
                    stats["cas_missing"], len(ids), fill)
    return ranked, stats


def format_stats(stats: dict[str, Any]) -> str:
    """One line with both Spearman correlations; under `paper` it says that CAS decides."""
    line = (f"ranked {stats['n']} samples (alpha={stats['alpha']}, normalize={stats['normalize']}); "
            f"Spearman(final, hmg_term)={stats['spearman_score_hmg']:.3f}, "
            f"Spearman(final, cas_term)={stats['spearman_score_cas']:.3f}"
            + (f"; {stats['cas_missing']} without CAS (imputed)" if stats["cas_missing"] else "")
            + (f"; {stats['cam_without_hmg']} CAM id(s) without an HMG score (not ranked)"
               if stats.get("cam_without_hmg") else "")
            + (f"; {stats['quarantined']} record(s) quarantined in {stats.get('rejected_file')}"
               if stats.get("quarantined") else ""))
    if stats["normalize"] == "paper":
        line += ("\nnormalize=paper (the released rank.py): the softmax of hmg is ~1/N per sample, so CAS alone "
                 "decides the order; normalize=rank lets both terms count as alpha says")
    return line
