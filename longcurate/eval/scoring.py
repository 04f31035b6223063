"""Per-item scores for probes and needles, and the VaL aggregation by position span.

Definitions follow docs/reference.md "VaL probing": word recall for documents, substring match for code
and database. Every score is in [0, 1], higher is better; aggregation is a mean per span of
consecutive positions within each set, then over sets; a task's avg is the mean over spans and its gap
is max − min over spans ("all" averages the tasks' avg and gap, as FILM's Table 1 does).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Iterable

from longcurate.core.errors import UserError


def word_recall(pred: str, gt: str) -> float:
    """|words(gt) ∩ words(pred)| / |words(gt)| on lower-cased whitespace-split word sets."""
    gt_words = set(gt.lower().split())
    if not gt_words:
        return 0.0
    return len(gt_words & set(pred.lower().split())) / len(gt_words)


def code_match(pred: str, gt: str) -> float:
    """1 if the function name (stripped of '.') is a substring of the prediction."""
    return float(gt.strip(".") in pred)


def database_match(pred: str, label: str, description: str | None) -> float:
    """1 if the lower-cased label or description (stripped of '.') is in the lower-cased prediction."""
    p = pred.lower()
    for gt in (label, description):
        if gt and gt.strip(".").lower() and gt.strip(".").lower() in p:
            return 1.0
    return 0.0


def score_probe(probe: dict[str, Any], pred: str) -> float:
    task = probe["task"]
    if task == "document":
        return word_recall(pred, probe["answer"])
    if task == "code":
        return code_match(pred, probe["answer"])
    if task == "database":
        return database_match(pred, probe["answer"], probe.get("description"))
    raise ValueError(f"unknown probe task {task!r}")


def needle_words(text: str) -> set[str]:
    """Lower-cased words without surrounding punctuation."""
    return {w for w in re.findall(r"[\w'-]+", text.lower())}


def needle_recall(pred: str, key_words: list[str]) -> float:
    """Share of the needle's key words that the prediction contains (as words)."""
    keys = {k.lower() for k in key_words}
    if not keys:
        return 0.0
    return len(keys & needle_words(pred)) / len(keys)


def _mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def interval(values: Iterable[float], seed: int = 0, scale: float = 1.0, digits: int | None = None) -> dict[str, Any]:
    """The mean of per-item values with its 95% percentile-bootstrap interval (`core.stats`), as JSON:
    {mean, low, high, n}, times `scale` (and rounded to `digits`); all None when there is no item."""
    from longcurate.core.stats import bootstrap_mean

    xs = [float(x) for x in values]
    if not xs:
        return {"mean": None, "low": None, "high": None, "n": 0}
    e = bootstrap_mean(xs, seed=seed)

    def fix(x: float) -> float:
        return round(x * scale, digits) if digits is not None else x * scale
    return {"mean": fix(e.mean), "low": fix(e.low), "high": fix(e.high), "n": e.n}


def aggregate_probes(scored: list[dict[str, Any]], span: int, seed: int = 0) -> dict[str, Any]:
    """`scored`: items with task, set_id, position_id, score. Returns per task avg, gap, spans and
    the mean score per position (over sets), plus "all"; `mean` is the mean over items with its 95%
    bootstrap interval (the figure the report prints; avg weighs spans equally instead)."""
    if span < 1:
        raise UserError("eval.probes.span must be >= 1")
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for it in scored:
        by_task[it["task"]].append(it)
    tasks: dict[str, Any] = {}
    for task in sorted(by_task):
        cells: dict[tuple[int, int], list[float]] = defaultdict(list)  # (span, set) -> scores
        positions: dict[int, list[float]] = defaultdict(list)
        for it in by_task[task]:
            cells[(it["position_id"] // span, it["set_id"])].append(float(it["score"]))
            positions[it["position_id"]].append(float(it["score"]))
        span_sets: dict[int, list[float]] = defaultdict(list)
        for (k, _set), xs in cells.items():
            span_sets[k].append(_mean(xs))
        spans = [{"span": k, "positions": [k * span, (k + 1) * span - 1], "score": _mean(span_sets[k]),
                  "n": sum(len(cells[(k, s)]) for (kk, s) in cells if kk == k)} for k in sorted(span_sets)]
        values = [s["score"] for s in spans]
        tasks[task] = {
            "avg": _mean(values),
            "gap": max(values) - min(values),
            "n": len(by_task[task]),
            "mean": interval((it["score"] for it in by_task[task]), seed),
            "spans": spans,
            "by_position": [{"position_id": p, "score": _mean(positions[p])} for p in sorted(positions)],
        }
    out: dict[str, Any] = {"span": span, "tasks": tasks}
    if tasks:
        out["all"] = {"avg": _mean(t["avg"] for t in tasks.values()), "gap": _mean(t["gap"] for t in tasks.values()),
                      "mean": interval((it["score"] for it in scored), seed)}
    return out


def aggregate_needle(scored: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """`scored`: items with length, depth, score -> the grid (rows: depths, columns: lengths)."""
    lengths = sorted({int(it["length"]) for it in scored})
    depths = sorted({float(it["depth"]) for it in scored})
    cells: dict[tuple[int, float], list[float]] = defaultdict(list)
    for it in scored:
        cells[(int(it["length"]), float(it["depth"]))].append(float(it["score"]))
    cell = {k: _mean(v) for k, v in cells.items()}
    grid = [[cell.get((L, d)) for L in lengths] for d in depths]
    return {"lengths": lengths, "depths": depths, "grid": grid,
            "avg": _mean(cell.values()), "n": len(cell),
            "mean": interval((it["score"] for it in scored), seed)}
