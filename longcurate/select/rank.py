"""Rank samples by `score = α · hmg_term + (1 − α) · cas_term`.

`normalize: rank` (the default) uses the percentile rank of each term: both are spread uniformly over
(0, 1], so α is the share each one has in moving the order, whatever the scales of HMG and CAS.
`normalize: paper` reproduces the released `rank.py`: hmg_term = softmax of hmg over the whole dataset,
cas_term = CAS as is. Softmax terms are ~1/N each while CAS spreads over ~0.1, so CAS alone decides the
order there (on the demo data Spearman 1.00 with CAS, 0.28 with HMG). Every run reports the Spearman
correlation of the final score with each term, so users see which one decides. The ranked records also
carry the baselines' figures from the HMG file (`ifd`, `perplexity` = PPL(y | x) under θ_B) so that
`budget.method_orders` can order by them, and each sample's token count from the scoring pass
(`n_tokens`), so the `length` budget orders by real counts whatever the input's records carry.

Ranking holds ids and a few float columns (`Figures`), never the score records (CAM's carry
per-segment lists), and writes the ranked records one at a time (`Ranking`).
"""

from __future__ import annotations

import logging
import math
import warnings
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Iterable

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


HMG_FIGURES = ("hmg", "ifd", "ppl_b", "n_tokens")  # what rank reads of an HMG record (the last three optional)
CAM_FIGURES = ("cas",)


@dataclass
class Figures:
    """Score records reduced to their ids and the named figures, one float column each (NaN where a
    record has none): what ranking holds, a few bytes per sample whatever the records carry."""

    names: tuple[str, ...]
    ids: list[str] = field(default_factory=list)
    columns: dict[str, array] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.names:
            self.columns.setdefault(name, array("d"))

    @classmethod
    def collect(cls, records: Iterable[dict[str, Any]], names: tuple[str, ...]) -> "Figures":
        out = cls(names)
        for r in records:
            out.add(r)
        return out

    def add(self, record: dict[str, Any]) -> None:
        self.ids.append(str(record["id"]))
        for name in self.names:
            self.columns[name].append(float(record[name]) if name in record else math.nan)

    def column(self, name: str) -> np.ndarray:
        return np.frombuffer(self.columns[name], dtype=np.float64) if len(self.ids) else np.zeros(0)

    def __len__(self) -> int:
        return len(self.ids)


def as_figures(records: Figures | Iterable[dict[str, Any]], names: tuple[str, ...]) -> Figures:
    """Score records (e.g. a list in memory) as `Figures`; `Figures` as they are."""
    return records if isinstance(records, Figures) else Figures.collect(records, names)


def rank_scores(hmg: Figures | Iterable[dict[str, Any]], cam: Figures | Iterable[dict[str, Any]] | None,
                alpha: float = 0.8, normalize: str = "rank") -> tuple["Ranking", dict[str, Any]]:
    """Join HMG and CAM figures (or records) by id and rank (best first; ties by id). Samples without a
    CAS (CAM run on a subset, or skipped) get the mean cas_term of the others and are flagged
    `cas_imputed`."""
    hmg = as_figures(hmg, HMG_FIGURES)
    cam = as_figures(cam, CAM_FIGURES) if cam is not None else None
    if not len(hmg):
        raise UserError("no HMG scores to rank")
    ids = hmg.ids
    if len(set(ids)) != len(ids):
        raise UserError("HMG scores repeat an id")
    h = hmg.column("hmg")
    cas_at = {i: k for k, i in enumerate(cam.ids)} if cam is not None else {}
    cam_cas = cam.column("cas") if cam is not None else np.zeros(0)
    have = np.array([i in cas_at for i in ids], dtype=bool)
    c = np.array([cam_cas[cas_at[i]] if i in cas_at else np.nan for i in ids], dtype=np.float64)
    del cas_at
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
    ranking = Ranking(hmg, np.asarray(order, dtype=np.int64), score, h, c, have, h_term, c_term)
    stats = {"n": len(ids), "alpha": alpha, "normalize": normalize, "cas_missing": int((~have).sum()),
             "spearman_score_hmg": spearman(score, h_term),
             "spearman_score_cas": spearman(score[have], c_term[have]) if have.sum() > 1 else float("nan"),
             "spearman_hmg_cas": spearman(h[have], c[have]) if have.sum() > 1 else float("nan")}
    if stats["cas_missing"]:
        log.warning("rank: %d of %d samples have no CAS; their cas_term is the mean (%.4g)",
                    stats["cas_missing"], len(ids), fill)
    return ranking, stats


@dataclass
class Ranking(Sequence):
    """The ranked records, best first, made one at a time from the columns (a list's interface, a
    list's memory never): `id, rank, score, hmg, cas, hmg_term, cas_term`, `cas_imputed` where CAS
    is missing, and the HMG record's `ifd`, `perplexity` (= ppl_b) and `n_tokens` where it has them."""

    hmg: Figures
    order: np.ndarray
    score: np.ndarray
    h: np.ndarray
    c: np.ndarray
    have: np.ndarray
    h_term: np.ndarray
    c_term: np.ndarray

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, pos):  # type: ignore[override]
        if isinstance(pos, slice):
            return [self.record(k) for k in range(*pos.indices(len(self)))]
        return self.record(range(len(self))[pos])

    def record(self, pos: int) -> dict[str, Any]:
        i = int(self.order[pos])
        have = bool(self.have[i])
        rec: dict[str, Any] = {"id": self.hmg.ids[i], "rank": pos + 1, "score": float(self.score[i]),
                               "hmg": float(self.h[i]), "cas": float(self.c[i]) if have else None,
                               "hmg_term": float(self.h_term[i]), "cas_term": float(self.c_term[i])}
        if not have:
            rec["cas_imputed"] = True
        for key, src in (("ifd", "ifd"), ("perplexity", "ppl_b"), ("n_tokens", "n_tokens")):
            value = self.hmg.columns[src][i] if src in self.hmg.columns else math.nan
            if not math.isnan(value):
                rec[key] = int(value) if key == "n_tokens" else float(value)
        return rec


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
