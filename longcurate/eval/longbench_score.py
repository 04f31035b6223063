"""LongBench scoring: prediction files in, `result.json` out (docs/reference.md, "LongBench (v1) scoring").

    <pred_dir>/<task>.jsonl             predictions: pred, answers, all_classes, length (+ _id)
    <pred_dir>/result.json              one score per task (0-100, 2 decimals), averages, failures
    <pred_dir>/result.rejected.jsonl    every failure with file, line, field, _id and reason
(`core.eval_layout.LongBenchFiles` names them.)

Failures — a data line that cannot be used, a generation error, a missing or malformed prediction
line, a prediction file with fewer lines than the data — are never scored as 0 silently: the item is
*excluded* from its task's mean, and `result.json` lists it under `failures` and counts it under
`counts.<task>.failed` (next to `counts.<task>.scored`, the number of items the score averages).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longcurate.core.eval_layout import LongBenchFiles
from longcurate.core.jsonl import Rejects, write_json
from longcurate.core.reader import read_rows
from longcurate.core.records import RecordError
from longcurate.eval import metrics
from longcurate.eval.longbench_data import Failure, FailureSink, LongBenchItem, check_common
from longcurate.eval.scoring import interval

FAILURE_POLICY = "failed items are excluded from their task's mean; counts.<task>.failed says how many"


@dataclass
class TaskResult:
    task: str
    scores: list[float]
    lengths: list[int | None]
    failures: list[Failure]
    extra: int = 0  # prediction lines for items outside the given data (ignored)

    def score(self) -> float | None:
        return metrics.metric_for(self.task).task_score(self.scores)

    def buckets(self) -> dict[str, float | None]:
        return metrics.bucket_scores(self.scores, [int(n) for n in self.lengths],
                                     metrics.metric_for(self.task).task_score)


def _parse_prediction(obj: dict[str, Any], task: str, e: bool) -> tuple[str, list[str], int | None, list[str] | None]:
    if "pred" not in obj:
        raise RecordError("pred", "missing (no prediction)")
    if not isinstance(obj["pred"], str):
        raise RecordError("pred", f"must be a string, got {type(obj['pred']).__name__}")
    answers, length, all_classes = check_common(obj, task, need_length=e)
    return obj["pred"], answers, length, all_classes


def _read_predictions(task: str, pred_path: Path, items: list[LongBenchItem] | None,
                      known_errors: dict[tuple[str, str], str], failures: list[Failure]) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """The prediction lines to score and the count of extra ones; with the task's data (`items`), every
    item without a prediction is a failure (with the reason it failed this run, when known)."""
    rows: list[tuple[int, dict[str, Any]]] = []
    if pred_path.exists():
        rows = [(row.line, row.record) for row in read_rows(pred_path, FailureSink(task, failures))]
    elif items is None:
        raise FileNotFoundError(f"prediction file not found: {pred_path}")
    if items is None:
        return rows, 0
    rows, missing, extra = _align(rows, items, pred_path)
    for item, reason in missing:
        failures.append(Failure(task, known_errors.get((task, item.id), reason), str(pred_path), None, "pred", item.id))
    return rows, extra


def score_task(task: str, pred_path: str | os.PathLike, *, e: bool = False,
               items: list[LongBenchItem] | None = None,
               known_errors: dict[tuple[str, str], str] | None = None) -> TaskResult:
    """Score one prediction file. With the task's data (`items`), every data item must have a prediction
    (matched by `_id`, or by line when the file has no `_id`s); the missing ones are failures."""
    pred_path = Path(pred_path)
    failures: list[Failure] = []
    rows, extra = _read_predictions(task, pred_path, items, known_errors or {}, failures)
    result = TaskResult(task, [], [], failures, extra)
    seen: set[str] = set()
    for lineno, obj in rows:
        rid = obj.get("_id")
        rid = str(rid) if rid is not None else None
        if rid is not None:
            if rid in seen:
                failures.append(Failure(task, "duplicate _id (only the first is scored)", str(pred_path), lineno,
                                        "_id", rid))
                continue
            seen.add(rid)
        try:
            pred, answers, length, all_classes = _parse_prediction(obj, task, e)
            value = metrics.score_record(task, pred, answers, all_classes)
        except RecordError as err:
            failures.append(Failure(task, err.reason, str(pred_path), lineno, err.field, rid))
            continue
        except ValueError as err:  # e.g. a retrieval answer without a paragraph number
            failures.append(Failure(task, str(err), str(pred_path), lineno, "answers", rid))
            continue
        result.scores.append(value)
        result.lengths.append(length)
    failures.sort(key=lambda f: (f.line is None, f.line or 0, f.id or ""))
    return result


def _align(rows: list[tuple[int, dict[str, Any]]], items: list[LongBenchItem], path: Path):
    """Match prediction lines to data items: by `_id` when the lines carry one, else by position."""
    if rows and all("_id" in obj for _, obj in rows):
        wanted = {it.id for it in items}
        have = {str(obj["_id"]) for _, obj in rows}
        kept = [(n, obj) for n, obj in rows if str(obj["_id"]) in wanted]
        missing = [(it, "no prediction for this _id") for it in items if it.id not in have]
        return kept, missing, len(rows) - len(kept)
    missing = [(it, f"no prediction: {path.name} has {len(rows)} lines for {len(items)} data items")
               for it in items[len(rows):]]
    return rows[:len(items)], missing, max(0, len(rows) - len(items))


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 2) if vals else None


def _scores(results: list[TaskResult], e: bool) -> dict[str, Any]:
    """Per-task scores (buckets with -E) and their averages over tasks (and categories)."""
    if len({metrics.metric_for(r.task).higher_is_better for r in results}) > 1:
        raise ValueError("cannot average tasks whose metrics point in different directions")
    if e:
        scores = {r.task: r.buckets() for r in results}
        return {"scores": scores, "average": {b: _mean(s[b] for s in scores.values()) for b in metrics.BUCKETS}}
    task_scores = {r.task: r.score() for r in results}
    categories: dict[str, list[float | None]] = {}
    for task, s in task_scores.items():
        categories.setdefault(metrics.CATEGORY[task], []).append(s)
    return {"scores": task_scores, "average": _mean(task_scores.values()),
            "categories": {c: _mean(v) for c, v in categories.items()}}


def build_result(results: list[TaskResult], e: bool) -> dict[str, Any]:
    """result.json: scores per task (buckets with -E), averages over tasks, each task's metric (name,
    aggregation, direction), counts and failures."""
    out: dict[str, Any] = {"benchmark": "LongBench-E" if e else "LongBench", **_scores(results, e)}
    out["metrics"] = {r.task: metrics.metric_for(r.task).describe() for r in results}
    # Each task's mean with its 95% bootstrap interval over items, on the scores' 0-100 scale.
    out["intervals"] = {r.task: interval(r.scores, scale=100, digits=2) for r in results}
    counts = {}
    for r in results:
        counts[r.task] = {"scored": len(r.scores), "failed": len(r.failures)}
        if r.extra:  # prediction lines for items outside the data: not scored
            counts[r.task]["extra"] = r.extra
    out["counts"] = counts
    out["num_failures"] = sum(len(r.failures) for r in results)
    out["failures"] = {r.task: [f.to_dict() for f in r.failures] for r in results if r.failures}
    out["failure_policy"] = FAILURE_POLICY
    return out


def score_dir(pred_dir: str | os.PathLike, *, tasks: list[str] | None = None, e: bool = False,
              data: dict[str, list[LongBenchItem]] | None = None,
              known_errors: dict[tuple[str, str], str] | None = None,
              extra_failures: list[Failure] | None = None) -> tuple[dict[str, Any], list[Failure]]:
    """Score `<pred_dir>/<task>.jsonl` for `tasks` (default: every known task with a file there, or the
    tasks of `data`). Returns (result dict, every failure)."""
    files = LongBenchFiles(Path(pred_dir))
    if tasks is None:
        tasks = list(data) if data is not None else [t for t in metrics.TASKS if files.predictions(t).exists()]
    if not tasks:
        raise FileNotFoundError(f"no prediction files <task>.jsonl for a known LongBench task in {pred_dir}")
    for t in tasks:
        metrics.metric_for(t)
    results = []
    for task in tasks:
        items = data.get(task, []) if data is not None else None
        results.append(score_task(task, files.predictions(task), e=e, items=items, known_errors=known_errors))
    for f in extra_failures or []:  # bad data lines: failures of their task too
        for r in results:
            if r.task == f.task:
                r.failures.insert(0, f)
    result = build_result(results, e)
    return result, [f for r in results for f in r.failures]


def write_result(files: LongBenchFiles, result: dict[str, Any], failures: list[Failure]) -> Path:
    """`result.json` (atomic) and `result.rejected.jsonl` (every failure; removed when there is none)."""
    with contextlib.suppress(FileNotFoundError):
        files.rejected.unlink()
    with Rejects(files.rejected) as rejects:
        for f in failures:
            rejects.add(f"{f.task}: {f.reason}", file=f.file, line=f.line, field_name=f.field, record_id=f.id)
    write_json(files.result, result)
    return files.result


def format_result(result: dict[str, Any], rejected: Path, max_failures: int = 20) -> str:
    """A plain-text table of the scores (with each task's metric; ↑ higher is better) and the failures
    (the first `max_failures`; every one is in `rejected`)."""
    e = result["benchmark"] == "LongBench-E"
    header = ["task", "metric", *(metrics.BUCKETS if e else ["score"]), "scored", "failed"]
    rows = []
    for task, s in result["scores"].items():
        c = result["counts"][task]
        m = result.get("metrics", {}).get(task) or metrics.metric_for(task).describe()
        vals = [s[b] for b in metrics.BUCKETS] if e else [s]
        rows.append([task, f"{m['metric']} {'↑' if m['higher_is_better'] else '↓'}",
                     *("-" if v is None else f"{v:.2f}" for v in vals), str(c["scored"]), str(c["failed"])])
    avg = result["average"]
    avg_vals = [avg[b] for b in metrics.BUCKETS] if e else [avg]
    rows.append(["average", "", *("-" if v is None else f"{v:.2f}" for v in avg_vals), "", ""])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    return "\n".join(lines + _failure_lines(result, rejected, max_failures))


def _failure_lines(result: dict[str, Any], rejected: Path, max_failures: int) -> list[str]:
    n = result["num_failures"]
    lines = [f"failures: {n} (excluded from the scores)"]
    shown = 0
    for task, fs in result.get("failures", {}).items():
        for f in fs:
            if shown >= max_failures:
                break
            lines.append(f"  {task}: {Failure(task, f['reason'], f['file'], f['line'], f['field'], f['_id'])}")
            shown += 1
    if n > shown:
        lines.append(f"  ... {n - shown} more in {rejected}")
    return lines


__all__ = ["FAILURE_POLICY", "TaskResult", "score_task", "score_dir",
           "build_result", "write_result", "format_result"]
