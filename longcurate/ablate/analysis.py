"""The ablation's statistics for one measure, from the per-item outcomes of every model.

- Items: those every model has a value for (the same held-out items, so every comparison is paired).
- An arm's outcomes form a [subset, seed, item] table (`core.replication`): one subset for a
  deterministic arm, `ablate.subsets` for a drawn one (`random`, `control-wrong`); the base model is
  one model.
- Each arm's mean, and its difference from `random`, come with a 95% cluster-bootstrap interval over
  subsets, seeds and items (`core.replication.cluster_mean` / `cluster_difference`; the control is
  paired with random subset by subset); p-values are Holm-adjusted over every trained arm compared.
- A one-subset arm is also placed among the random draws: the share of random subsets (each averaged
  over its seeds) it beats.
- Variance components (items, seeds, subsets) of the reference arm, each one's share of the variance of
  a one-subset arm's difference from random, and the minimum detectable difference (`criteria.power`,
  two-sided `criteria.alpha`).
- Breakdowns, each with its interval: by source (probe / heldout), by question type (the probe's task;
  the held-out sample's question generator) and by evidence position (equal-width buckets of 0..1).
Every resampling uses a fixed seed, so the same outcomes always give the same report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from longcurate.ablate.outcomes import Outcome
from longcurate.core.replication import (Components, cluster_difference, cluster_mean,
                                         difference_variance, holm, min_detectable_difference, percent_beaten,
                                         variance_components)
from longcurate.core.stats import Estimate, PairedComparison
from longcurate.eval.nll import bucket_of

STATS_SEED = 0
Model = tuple[int | None, str]  # (subset, seed) of one trained model; the base model is (None, "-")


@dataclass(frozen=True)
class ArmTable:
    """One arm's outcomes on the common items: `values[subset, seed, item]`."""

    subsets: list[int | None]
    seeds: list[str]
    values: np.ndarray

    def cells(self, idx: list[int]) -> np.ndarray:
        return self.values[:, :, idx]

    def model_means(self) -> dict[str, float]:
        out = {}
        for a, k in enumerate(self.subsets):
            for b, s in enumerate(self.seeds):
                seed = "untrained" if s == "-" else f"seed-{s}"
                out["/".join(([] if k is None else [f"subset-{k}"]) + [seed])] = float(self.values[a, b].mean())
        return out


@dataclass(frozen=True)
class Comparison:
    """arm − baseline: the difference, its p-value raw and Holm-adjusted, and (for a one-subset arm)
    the share of the baseline's subsets the arm beats."""

    difference: Estimate
    p_value: float
    p_holm: float | None
    beats_random_subsets: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"difference": self.difference.to_dict(), "p_value": self.p_value, "p_holm": self.p_holm,
                "beats_random_subsets_percent": self.beats_random_subsets}


@dataclass(frozen=True)
class RowStats:
    """One arm (or the base model) on one measure."""

    name: str
    subsets: int
    seeds: int
    mean: Estimate
    model_means: dict[str, float]
    seed_sd: float | None  # pooled sd of model means between the seeds of one subset
    subset_sd: float | None  # sd of the subsets' means (a drawn arm)
    by_source: dict[str, Estimate]
    by_type: dict[str, Estimate]
    by_position: list[Estimate]
    vs_baseline: Comparison | None  # None for the baseline itself
    vs_baseline_by_type: dict[str, PairedComparison | None]
    vs_baseline_by_position: list[PairedComparison | None]

    def to_dict(self) -> dict[str, Any]:
        return {"subsets": self.subsets, "seeds": self.seeds, "mean": self.mean.to_dict(),
                "model_means": self.model_means, "seed_sd": self.seed_sd, "subset_sd": self.subset_sd,
                "by_source": {k: v.to_dict() for k, v in self.by_source.items()},
                "by_type": {k: v.to_dict() for k, v in self.by_type.items()},
                "by_position": [e.to_dict() for e in self.by_position],
                "vs_baseline": self.vs_baseline.to_dict() if self.vs_baseline else None,
                "vs_baseline_by_type": {k: c.to_dict() if c else None for k, c in self.vs_baseline_by_type.items()},
                "vs_baseline_by_position": [c.to_dict() if c else None for c in self.vs_baseline_by_position]}


@dataclass(frozen=True)
class Design:
    """What the statistics need besides the outcomes: the baseline and control arms, the direction of
    better, the criteria, the position buckets, bootstrap replicates, each item's question type."""

    baseline: str
    control: str | None
    better: str
    alpha: float
    power: float
    buckets: int
    resamples: int
    question_type: Callable[[Outcome], str]
    untrained: tuple[str, ...] = ("base",)  # reference rows outside the family of arms compared


@dataclass(frozen=True)
class MeasureStats:
    measure: str
    items: list[str]  # the common item keys, sorted
    dropped: int  # items some model lacks (left out of every figure)
    items_by_source: dict[str, int]
    items_by_type: dict[str, int]
    buckets: list[tuple[float, float]]
    bucket_items: list[int]
    components: Components
    variance_shares: dict[str, float]  # of Var(one-subset arm − random)
    min_detectable: float
    rows: dict[str, RowStats]

    def to_dict(self) -> dict[str, Any]:
        return {"items": len(self.items), "dropped_items": self.dropped, "items_by_source": self.items_by_source,
                "items_by_type": self.items_by_type,
                "position_buckets": [{"low": lo, "high": hi, "items": n}
                                     for (lo, hi), n in zip(self.buckets, self.bucket_items)],
                "variance_components": self.components.to_dict(), "variance_shares": self.variance_shares,
                "min_detectable_difference": self.min_detectable,
                "rows": {k: v.to_dict() for k, v in self.rows.items()}}


def common_items(models: dict[str, dict[Model, dict[str, Outcome]]]) -> tuple[list[str], int]:
    """The item keys every model has, sorted; and how many keys some model lacks."""
    sets = [set(o) for per in models.values() for o in per.values()]
    every = set.intersection(*sets) if sets else set()
    return sorted(every), len(set.union(*sets) - every) if sets else 0


def arm_table(per_model: dict[Model, dict[str, Outcome]], items: list[str]) -> ArmTable:
    subsets = sorted({k for k, _ in per_model}, key=lambda k: -1 if k is None else k)
    seeds = sorted({s for _, s in per_model}, key=lambda s: (len(s), s))
    missing = [(k, s) for k in subsets for s in seeds if (k, s) not in per_model]
    if missing:
        raise ValueError(f"models missing from a balanced arm: {missing}")
    values = np.array([[[per_model[(k, s)][i].value for i in items] for s in seeds] for k in subsets])
    return ArmTable(subsets, seeds, values)


def pooled_sds(t: ArmTable) -> tuple[float | None, float | None]:
    """(seed sd pooled within subsets, sd of subset means) of an arm's model means."""
    means = t.values.mean(axis=2)
    seed_sd = float(np.sqrt(means.var(axis=1, ddof=1).mean())) if means.shape[1] > 1 else None
    subset_sd = float(means.mean(axis=1).std(ddof=1)) if means.shape[0] > 1 else None
    return seed_sd, subset_sd


def groups(items: list[str], label: Callable[[str], Any]) -> dict[Any, list[int]]:
    out: dict[Any, list[int]] = {}
    for j, k in enumerate(items):
        lab = label(k)
        if lab is not None:
            out.setdefault(lab, []).append(j)
    return dict(sorted(out.items()))


def comparison(t: ArmTable, ref: ArmTable, name: str, d: Design, idx: list[int] | None = None) -> PairedComparison:
    """arm − baseline over the items `idx` (all by default); the control is paired by subset."""
    a, r = (t.values, ref.values) if idx is None else (t.cells(idx), ref.cells(idx))
    return cluster_difference(a, r, paired_subsets=name == d.control and a.shape[0] == r.shape[0],
                              resamples=d.resamples, seed=STATS_SEED)


def row_stats(name: str, t: ArmTable, ref: ArmTable | None, cells: dict[str, dict[Any, list[int]]],
              d: Design) -> RowStats:
    """An arm's figures; `ref` is the baseline's table (None for the baseline itself)."""
    def mean(idx: list[int]) -> Estimate:
        return cluster_mean(t.cells(idx), resamples=d.resamples, seed=STATS_SEED)

    by_pos = [cells["position"].get(b) for b in range(d.buckets)]
    seed_sd, subset_sd = pooled_sds(t)
    vs = None
    if ref is not None:
        diff = comparison(t, ref, name, d)
        beats = None
        if t.values.shape[0] == 1 and ref.values.shape[0] > 1:
            beats = percent_beaten(float(t.values.mean()), list(ref.values.mean(axis=(1, 2))), d.better)
        vs = Comparison(diff.difference, diff.p_value, None, beats)
    return RowStats(
        name, len(t.subsets), len(t.seeds), cluster_mean(t.values, resamples=d.resamples, seed=STATS_SEED),
        t.model_means(), seed_sd, subset_sd, {k: mean(v) for k, v in cells["source"].items()},
        {k: mean(v) for k, v in cells["type"].items()},
        [mean(idx) if idx else Estimate(np.nan, np.nan, np.nan, 0) for idx in by_pos], vs,
        {k: comparison(t, ref, name, d, v) if ref is not None else None for k, v in cells["type"].items()},
        [comparison(t, ref, name, d, idx) if ref is not None and idx else None for idx in by_pos])


def with_holm(rows: dict[str, RowStats], family: list[str]) -> dict[str, RowStats]:
    """The rows with `p_holm` set over the comparisons of the arms in `family`."""
    from dataclasses import replace

    names = [n for n in family if rows[n].vs_baseline is not None]
    adjusted = holm([rows[n].vs_baseline.p_value for n in names])
    out = dict(rows)
    for n, p in zip(names, adjusted):
        out[n] = replace(rows[n], vs_baseline=replace(rows[n].vs_baseline, p_holm=p))
    return out


def design_figures(tables: dict[str, ArmTable], n: int, d: Design) -> tuple[Components, dict[str, float], float]:
    """Variance components of the baseline (seeds pooled over every trained arm with all seeds), each
    component's share of Var(one-subset arm − baseline) and the minimum detectable difference."""
    ref = tables[d.baseline]
    others = [t.values for name, t in tables.items() if name != d.baseline and len(t.seeds) == len(ref.seeds)]
    c = variance_components(ref.values, others)
    shares = difference_variance(c, subsets=len(ref.subsets), seeds=len(ref.seeds), items=n)
    return c, shares, min_detectable_difference(sum(shares.values()), alpha=d.alpha, power=d.power)


def measure_stats(measure: str, models: dict[str, dict[Model, dict[str, Outcome]]], d: Design) -> MeasureStats:
    """`models[arm][(subset, seed)]` = that model's outcomes by item key; arms include `base`."""
    items, dropped = common_items(models)
    if not items:
        raise ValueError(f"{measure}: no item has an outcome for every model")
    info = {k: next(iter(next(iter(models.values())).values()))[k] for k in items}
    tables = {name: arm_table(per, items) for name, per in models.items()}
    cells = {"source": groups(items, lambda k: info[k].source),
             "type": groups(items, lambda k: d.question_type(info[k])),
             "position": groups(items, lambda k: bucket_of(info[k].position, d.buckets))}
    ref = tables[d.baseline]
    rows = {name: row_stats(name, t, None if name == d.baseline else ref, cells, d) for name, t in tables.items()}
    trained = [name for name in tables if name != d.baseline and name not in d.untrained]
    components, shares, mdd = design_figures({k: v for k, v in tables.items() if k in (*trained, d.baseline)},
                                             len(items), d)
    return MeasureStats(measure, items, dropped, {k: len(v) for k, v in cells["source"].items()},
                        {k: len(v) for k, v in cells["type"].items()},
                        [(i / d.buckets, (i + 1) / d.buckets) for i in range(d.buckets)],
                        [len(cells["position"].get(i, [])) for i in range(d.buckets)], components, shares, mdd,
                        with_holm(rows, trained))


__all__ = ["ArmTable", "Comparison", "RowStats", "MeasureStats", "Design", "measure_stats", "common_items",
           "bucket_of", "STATS_SEED"]
