"""Uncertainty for every figure a report prints: percentile-bootstrap confidence intervals of a mean,
and the paired sign-flip permutation test of a mean difference.

Both follow `scipy.stats` (`bootstrap(..., method="percentile")` and `permutation_test(...,
permutation_type="samples")` with the statistic mean(x - y)) and are tested against it; they are
written with numpy here because they run inside report code over many (arm, measure) pairs, where a
fixed seed must give the same bytes on every run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import product
from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
_CHUNK = 1_000  # resamples drawn at a time (bounds memory for thousands of items)


@dataclass(frozen=True)
class Estimate:
    """A mean with its confidence interval (`low`, `high`) over `n` items."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def format(self, scale: float = 1.0, digits: int = 3) -> str:
        """`0.512 [0.481, 0.544]` (values times `scale`)."""
        if self.n == 0:
            return "n/a"
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.mean * scale)} [{f.format(self.low * scale)}, {f.format(self.high * scale)}]"


def _values(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("expected a flat sequence of numbers")
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite")
    return x


def bootstrap_mean(values: Sequence[float], *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                   seed: int = 0) -> Estimate:
    """The mean and its percentile-bootstrap interval: resample the items with replacement
    `resamples` times and take the (1 ± confidence)/2 quantiles of the resampled means."""
    x = _values(values)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        k = min(_CHUNK, resamples - start)
        means[start:start + k] = x[rng.integers(0, n, size=(k, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Estimate(float(x.mean()), float(low), float(high), n)


def sign_flip_p_value(differences: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of "the mean paired difference is 0": under the null each item's difference
    is as likely to have either sign. Every sign pattern is enumerated when there are at most
    `resamples` of them (the exact test); otherwise `resamples` random patterns are drawn and the
    observed one counts too. p = 2 · min(P(T ≥ t), P(T ≤ t)), capped at 1, as scipy computes it."""
    d = _values(differences)
    n = len(d)
    if n == 0:
        return math.nan
    observed = d.mean()
    if 2 ** n <= resamples:
        signs = np.array(list(product((1.0, -1.0), repeat=n)))
        stats = (signs * d).mean(axis=1)
        extra = 0
    else:
        rng = np.random.default_rng(seed)
        stats = np.concatenate([(rng.choice((-1.0, 1.0), size=(min(_CHUNK, resamples - s), n)) * d).mean(axis=1)
                                for s in range(0, resamples, _CHUNK)])
        extra = 1
    tol = abs(observed) * 1e-14 + 1e-300  # ties within rounding count as "as extreme"
    greater = (np.count_nonzero(stats >= observed - tol) + extra) / (len(stats) + extra)
    less = (np.count_nonzero(stats <= observed + tol) + extra) / (len(stats) + extra)
    return float(min(1.0, 2 * min(greater, less)))


@dataclass(frozen=True)
class PairedComparison:
    """arm − reference over the same items: the mean difference with its interval, and the p-value."""

    difference: Estimate
    p_value: float

    def to_dict(self) -> dict[str, object]:
        return {"difference": self.difference.to_dict(), "p_value": self.p_value}


def paired_comparison(arm: Sequence[float], reference: Sequence[float], *, confidence: float = CONFIDENCE,
                      resamples: int = RESAMPLES, seed: int = 0) -> PairedComparison:
    """Compare two measures item by item (`arm[i]` and `reference[i]` belong to the same item)."""
    a, r = _values(arm), _values(reference)
    if len(a) != len(r):
        raise ValueError(f"paired measures need the same items: {len(a)} != {len(r)}")
    d = a - r
    return PairedComparison(bootstrap_mean(d, confidence=confidence, resamples=resamples, seed=seed),
                            sign_flip_p_value(d, resamples=resamples, seed=seed))


__all__ = ["Estimate", "PairedComparison", "bootstrap_mean", "sign_flip_p_value", "paired_comparison",
           "CONFIDENCE", "RESAMPLES"]
