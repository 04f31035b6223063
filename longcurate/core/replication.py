"""Statistics of a replicated training experiment: models trained on data subsets x training seeds,
each scored on the same items. What `longcurate ablate` reports about "does this arm beat random?".

An arm's outcomes are one array `Y[subset, seed, item]`. A deterministic arm (a selection method: its
subset is fixed by the method) has one subset; a drawn arm (`random`, the control) has K. Every arm
has the same seeds (seed s is the same short data and batch order in every arm) and the same items.

- **Variance components** (method of moments on balanced tables; subsets > seeds nested, items
  crossed with both):
    items    σ²_item    the model x item interaction mean square of the reference arm's K·S models:
                        the part of an item's value that not every model shares
    seeds    σ²_seed    the variance of model means between the seeds of one subset, minus σ²_item / n,
                        pooled over every (arm, subset) with two or more seeds
    subsets  σ²_subset  the variance of the reference arm's subset means (seeds averaged), minus the
                        seed variance of such a mean (within / S)
  Negative estimates are reported as 0; a component the design cannot separate is None.
- **Difference arm − reference**, a *cluster bootstrap over subsets, seeds and items* (crossed, the
  "pigeonhole" scheme of Owen 2007): each replicate draws items (the same draw for both arms, so the
  comparison stays paired by item), seeds (the same draw for both arms when both have every seed) and
  the reference's subsets (the same draw for an arm paired with it subset by subset, the control),
  each with replacement and G − 1 of a level's G units (G >= 2): Efron's small-sample correction,
  which makes each level's resampled-mean variance s²/G instead of s²(G − 1)/G². Percentile
  interval; two-sided p = 2 min(P*(Δ* <= 0), P*(Δ* >= 0)). Measured coverage of the 95% interval on
  simulated outcomes with K = 4 subsets, S = 2 seeds, 60 items: see `tests/core/test_replication.py`
  and docs/design.md (about 0.95 when subsets or seeds carry the variance; conservative when item
  noise dominates, because every level's resampling carries some of it).
- **Minimum detectable difference** (80% power, two-sided 5%) of a one-subset arm against the
  reference, from the measured components (normal approximation): z-sum x sqrt(variance of Δ̂).
- **Holm's step-down adjustment** of the p-values of the arms compared.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy.stats import norm

from longcurate.core.stats import CONFIDENCE, RESAMPLES, Estimate, PairedComparison

_CHUNK = 500  # bootstrap replicates drawn at a time


def outcome_table(values: np.ndarray | Sequence) -> np.ndarray:
    """A [subset, seed, item] array of finite floats (a 1-D array is one model's items)."""
    y = np.asarray(values, dtype=np.float64)
    if y.ndim == 1:
        y = y[None, None, :]
    if y.ndim != 3 or 0 in y.shape:
        raise ValueError(f"outcomes must be a non-empty [subset, seed, item] array, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("outcomes must be finite")
    return y


@dataclass(frozen=True)
class Components:
    """Variance components (see the module docstring) with their degrees of freedom."""

    subsets: float | None
    seeds: float | None
    items: float
    df: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def interaction_mean_square(models: np.ndarray) -> tuple[float, int]:
    """The model x item interaction mean square of a [model, item] table, and its degrees of freedom."""
    m, n = models.shape
    df = (m - 1) * (n - 1)
    if df == 0:
        return math.nan, 0
    r = models - models.mean(axis=1, keepdims=True) - models.mean(axis=0, keepdims=True) + models.mean()
    return float((r ** 2).sum() / df), df


def within_subset_variance(tables: Sequence[np.ndarray]) -> tuple[float, int]:
    """The variance of model means between the seeds of one subset, pooled over every subset of every
    table that has two or more seeds, and its degrees of freedom."""
    total, df = 0.0, 0
    for y in tables:
        s = y.shape[1]
        if s >= 2:
            means = y.mean(axis=2)
            total += float(means.var(axis=1, ddof=1).sum()) * (s - 1)
            df += means.shape[0] * (s - 1)
    return (total / df, df) if df else (math.nan, 0)


def variance_components(reference: np.ndarray, others: Sequence[np.ndarray] = ()) -> Components:
    """The components of the reference arm's outcomes (subsets, seeds, items), seeds pooled over
    `others` too (arms with the same seeds)."""
    ref = outcome_table(reference)
    k, s, n = ref.shape
    items, item_df = interaction_mean_square(ref.reshape(k * s, n))
    within, seed_df = within_subset_variance([ref, *(outcome_table(o) for o in others)])
    seeds = max(within - items / n, 0.0) if seed_df else None
    subsets = None
    if k >= 2:
        noise = within / s if seed_df else items / n  # one seed: the subset term holds the seed term too
        subsets = max(float(ref.mean(axis=(1, 2)).var(ddof=1)) - noise, 0.0)
    return Components(subsets, seeds, items, {"subsets": k - 1, "seeds": seed_df, "items": item_df})


def difference_variance(c: Components, *, subsets: int, seeds: int, items: int) -> dict[str, float]:
    """Each component's share of Var(Δ̂) for a one-subset arm against a reference of `subsets`
    subsets, both with `seeds` seeds, on `items` items (arms independent given the components)."""
    k, s, n = subsets, seeds, items
    return {"subsets": (c.subsets or 0.0) / k,
            "seeds": (c.seeds or 0.0) * (1 / s + 1 / (k * s)),
            "items": c.items * (1 / (s * n) + 1 / (k * s * n))}


def min_detectable_difference(variance: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at `alpha` detects with `power` (normal approximation)."""
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * math.sqrt(max(variance, 0.0)))


def resample_weights(rng: np.random.Generator, units: int, replicates: int) -> np.ndarray:
    """[replicate, unit] weights summing to 1: G − 1 of G units drawn with replacement (one unit: itself)."""
    if units == 1:
        return np.ones((replicates, 1))
    draws = rng.integers(0, units, size=(replicates, units - 1))
    counts = np.zeros((replicates, units))
    np.add.at(counts, (np.repeat(np.arange(replicates), units - 1), draws.ravel()), 1.0)
    return counts / (units - 1)


def weighted_means(y: np.ndarray, subsets: np.ndarray, seeds: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Each replicate's weighted mean of a [subset, seed, item] table."""
    by_cell = np.einsum("bi,ksi->bks", items, y)
    return np.einsum("bks,bk,bs->b", by_cell, subsets, seeds)


def cluster_mean(values: np.ndarray, *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                 seed: int = 0) -> Estimate:
    """One arm's mean with its cluster-bootstrap interval (its subsets, seeds and items resampled as in
    `cluster_difference`); `n`: items."""
    y = outcome_table(values)
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - start)
        items, seeds, subsets = (resample_weights(rng, y.shape[axis], b) for axis in (2, 1, 0))
        stats.append(weighted_means(y, subsets, seeds, items))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(np.concatenate(stats), [alpha, 1 - alpha])
    return Estimate(float(y.mean()), float(low), float(high), y.shape[2])


def cluster_difference(arm: np.ndarray, reference: np.ndarray, *, paired_subsets: bool = False,
                       confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0) -> PairedComparison:
    """The difference of means arm − reference (see the module docstring). `paired_subsets`: the arm's
    subset k is built from the reference's subset k (the control), so both are drawn together."""
    a, r = outcome_table(arm), outcome_table(reference)
    if a.shape[2] != r.shape[2]:
        raise ValueError(f"paired arms need the same items: {a.shape[2]} != {r.shape[2]}")
    if paired_subsets and a.shape[0] != r.shape[0]:
        raise ValueError(f"subset-paired arms need the same subsets: {a.shape[0]} != {r.shape[0]}")
    shared_seeds = a.shape[1] == r.shape[1]
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - start)
        items = resample_weights(rng, a.shape[2], b)
        seeds_r = resample_weights(rng, r.shape[1], b)
        seeds_a = seeds_r if shared_seeds else resample_weights(rng, a.shape[1], b)
        subsets_r = resample_weights(rng, r.shape[0], b)
        subsets_a = subsets_r if paired_subsets else resample_weights(rng, a.shape[0], b)
        stats.append(weighted_means(a, subsets_a, seeds_a, items) - weighted_means(r, subsets_r, seeds_r, items))
    d = np.concatenate(stats)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(d, [alpha, 1 - alpha])
    below = (np.count_nonzero(d <= 0) + 1) / (len(d) + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (len(d) + 1)
    estimate = Estimate(float(a.mean() - r.mean()), float(low), float(high), a.shape[2])
    return PairedComparison(estimate, float(min(1.0, 2 * min(below, above))))


def percent_beaten(value: float, draws: Sequence[float], better: str) -> float:
    """The share (in %) of `draws` that `value` is better than (`better`: "lower" or "higher"); ties count half."""
    x = np.asarray(draws, dtype=np.float64)
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    wins = np.count_nonzero(value < x) if better == "lower" else np.count_nonzero(value > x)
    return float(100.0 * (wins + 0.5 * np.count_nonzero(value == x)) / len(x))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (family-wise error over the values given; None stays None)."""
    given = [(p, i) for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    out: list[float | None] = [None] * len(p_values)
    running, m = 0.0, len(given)
    for rank, (p, i) in enumerate(sorted(given)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


__all__ = ["Components", "outcome_table", "variance_components", "difference_variance",
           "min_detectable_difference", "cluster_mean", "cluster_difference", "resample_weights", "percent_beaten", "holm",
           "interaction_mean_square", "within_subset_variance"]
