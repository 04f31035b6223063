"""The ablation's statistics for one measure, from per-item outcomes of every (arm, seed) model.

- Items: those every model has a value for (the same held-out items, so every comparison is paired).
- An arm's item value is the mean over its seeds; its figure is the mean over items with a 95%
  percentile-bootstrap interval over items (`core.stats.bootstrap_mean`).
- Against the baseline arm (`random`): the paired difference arm − baseline over the same items (seeds
  averaged), its interval and the sign-flip permutation p-value (`core.stats.paired_comparison`).
- Seed-to-seed spread: the standard deviation (n − 1) of the per-seed means over the same items.
- By source (probe / heldout) and by evidence position (equal-width buckets of 0..1), each with its
  interval: the position curve; and the paired difference against the baseline in each bucket.
Every resampling uses a fixed seed, so the same outcomes always give the same report.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from longcurate.ablate.outcomes import Outcome
from longcurate.core.stats import Estimate, PairedComparison, bootstrap_mean, paired_comparison
from longcurate.eval.nll import bucket_of

STATS_SEED = 0


@dataclass(frozen=True)
class RowStats:
    """One arm (or the base model) on one measure."""

    name: str
    mean: Estimate
    seed_means: dict[str, float]  # seed -> mean over the common items
    seed_std: float | None  # None with a single seed
    by_source: dict[str, Estimate]
    by_position: list[Estimate]  # one per position bucket
    vs_baseline: PairedComparison | None  # None for the baseline itself
    vs_baseline_by_position: list[PairedComparison | None]  # per bucket (None: baseline, or no items)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.to_dict(), "seed_means": self.seed_means, "seed_std": self.seed_std,
                "by_source": {k: v.to_dict() for k, v in self.by_source.items()},
                "by_position": [e.to_dict() for e in self.by_position],
                "vs_baseline": self.vs_baseline.to_dict() if self.vs_baseline else None,
                "vs_baseline_by_position": [c.to_dict() if c else None for c in self.vs_baseline_by_position]}


@dataclass(frozen=True)
class MeasureStats:
    measure: str
    items: list[str]  # the common item keys, sorted
    dropped: int  # items some model lacks (left out of every figure)
    items_by_source: dict[str, int]
    buckets: list[tuple[float, float]]
    bucket_items: list[int]
    rows: dict[str, RowStats]

    def to_dict(self) -> dict[str, Any]:
        return {"items": len(self.items), "dropped_items": self.dropped, "items_by_source": self.items_by_source,
                "position_buckets": [{"low": lo, "high": hi, "items": n}
                                     for (lo, hi), n in zip(self.buckets, self.bucket_items)],
                "rows": {k: v.to_dict() for k, v in self.rows.items()}}


def common_items(models: dict[str, dict[str, dict[str, Outcome]]]) -> tuple[list[str], int]:
    """The item keys every model has, sorted; and how many keys some model lacks."""
    sets = [set(o) for seeds in models.values() for o in seeds.values()]
    every = set.intersection(*sets) if sets else set()
    return sorted(every), len(set.union(*sets) - every) if sets else 0


def seed_averaged(seeds: dict[str, dict[str, Outcome]], items: list[str]) -> list[float]:
    return [statistics.fmean(seeds[s][k].value for s in seeds) for k in items]


def row_stats(name: str, seeds: dict[str, dict[str, Outcome]], items: list[str], info: dict[str, Outcome],
              buckets: int, baseline: list[float] | None) -> RowStats:
    values = seed_averaged(seeds, items)
    seed_means = {s: statistics.fmean(o[k].value for k in items) for s, o in seeds.items()}
    sources = sorted({info[k].source for k in items})
    by_source = {src: bootstrap_mean([v for k, v in zip(items, values) if info[k].source == src], seed=STATS_SEED)
                 for src in sources}
    where = [bucket_of(info[k].position, buckets) for k in items]
    cells = [[j for j, b in enumerate(where) if b == i] for i in range(buckets)]
    by_position = [bootstrap_mean([values[j] for j in cell], seed=STATS_SEED) for cell in cells]
    paired = [paired_comparison([values[j] for j in cell], [baseline[j] for j in cell], seed=STATS_SEED)
              if baseline is not None and cell else None for cell in cells]
    return RowStats(name, bootstrap_mean(values, seed=STATS_SEED), seed_means,
                    statistics.stdev(seed_means.values()) if len(seed_means) > 1 else None, by_source,
                    by_position, paired_comparison(values, baseline, seed=STATS_SEED) if baseline is not None else None,
                    paired)


def measure_stats(measure: str, models: dict[str, dict[str, dict[str, Outcome]]], *, baseline: str,
                  buckets: int) -> MeasureStats:
    """`models[row][seed]` = that model's outcomes by item key; rows are arms (and `base`)."""
    items, dropped = common_items(models)
    if not items:
        raise ValueError(f"{measure}: no item has an outcome for every model")
    first = next(iter(next(iter(models.values())).values()))
    info = {k: first[k] for k in items}
    ref = seed_averaged(models[baseline], items)
    rows = {name: row_stats(name, seeds, items, info, buckets, None if name == baseline else ref)
            for name, seeds in models.items()}
    where = [bucket_of(info[k].position, buckets) for k in items]
    by_source: dict[str, int] = {}
    for k in items:
        by_source[info[k].source] = by_source.get(info[k].source, 0) + 1
    return MeasureStats(measure, items, dropped, dict(sorted(by_source.items())),
                        [(i / buckets, (i + 1) / buckets) for i in range(buckets)],
                        [where.count(i) for i in range(buckets)], rows)


__all__ = ["RowStats", "MeasureStats", "measure_stats", "common_items", "bucket_of", "STATS_SEED"]
