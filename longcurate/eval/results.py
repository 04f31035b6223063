"""One model's eval results, as the report reads them: every registered task's results file found in
the model's folder (`tasks.Task.results`), by task name, and what each was computed on (`item_set`),
so the report can tell figures made on different items apart."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longcurate.core.eval_layout import EvalFiles, EvalModelFiles
from longcurate.core.jsonl import read_json_if_valid
from longcurate.eval.tasks import TASKS

# The settings of a task's step that name its item files (their digests): with the item count they tell
# which items were asked (a limit takes the first N of a file).
ITEM_SETTINGS = ("items", "probes", "heldout")


@dataclass
class ModelResults:
    label: str
    folder: Path
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task name -> its results
    files: dict[str, Path] = field(default_factory=dict)  # task name -> the file they were read from
    item_sets: dict[str, dict[str, Any]] = field(default_factory=dict)  # task name -> `item_set`

    def get(self, task: str) -> dict[str, Any] | None:
        """A task's results (None when the model has none)."""
        return self.tasks.get(task)


def item_count(results: dict[str, Any]) -> int | dict[str, int] | None:
    """How many items a task's figures were computed from (scored and failed): `n_items`, LongBench-
    Chat's `n_cases`, or LongBench's count per task."""
    if isinstance(results.get("n_items"), int):
        return results["n_items"]
    if isinstance(results.get("n_cases"), int):
        return results["n_cases"]
    counts = results.get("counts")
    if isinstance(counts, dict):
        return {t: int(c.get("scored", 0)) + int(c.get("failed", 0)) for t, c in counts.items() if isinstance(c, dict)}
    return None


def count_text(n: int | dict[str, int] | None) -> str:
    """`12 items`, `hotpotqa 20 + trec 20 items`, or `? items`."""
    if isinstance(n, dict):
        return " + ".join(f"{t} {v}" for t, v in n.items()) + " items"
    return f"{'?' if n is None else n} items"


def item_set(results: dict[str, Any], path: Path) -> dict[str, Any]:
    """What a task's figures were computed on: the item count and the digests of the item files
    (`ITEM_SETTINGS`), as the completion marker of the step that wrote `path` records them (the
    markers in its folder, or the folder's own). Two models whose item sets differ are not compared
    side by side without a warning."""
    chosen: dict[str, Any] = {}
    folder = path.parent
    for marker in (*sorted(folder.glob("*.done")), folder.with_name(folder.name + ".done")):
        recorded = read_json_if_valid(marker) if marker.exists() else None
        params = recorded.get("params") if isinstance(recorded, dict) else None
        if isinstance(params, dict):
            chosen.update({k: params[k] for k in ITEM_SETTINGS if k in params})
    return {"n": item_count(results), **chosen}


def load_results(folder: str | Path, label: str | None = None) -> ModelResults:
    """The results of every task the folder holds; FileNotFoundError when it holds none."""
    folder = Path(folder)
    files = EvalModelFiles(folder)
    found = {name: path for name, task in TASKS.items() if (path := task.results_file(files)) is not None}
    if not found:
        expected = [str(p.relative_to(folder)) for task in TASKS.values() for p in task.results(files)]
        raise FileNotFoundError(f"{folder}: no {', '.join(expected)}")
    tasks = {}
    for name, path in found.items():
        with open(path, encoding="utf-8") as f:
            tasks[name] = json.load(f)
    sets = {name: item_set(tasks[name], path) for name, path in found.items()}
    return ModelResults(label or folder.name, folder, tasks, found, sets)


def model_folders(evals: EvalFiles) -> list[Path]:
    """Every model folder under an eval folder that holds a task's results (sorted by name)."""
    if not evals.folder.is_dir():
        return []
    return [p for p in sorted(evals.folder.iterdir()) if p.is_dir()
            and any(task.results_file(EvalModelFiles(p)) is not None for task in TASKS.values())]


def same_items(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two item sets are the same: equal counts, and equal digests of every item file both
    record (a task left incomplete has no marker, so only its count is known)."""
    return a.get("n") == b.get("n") and all(a[k] == b[k] for k in ITEM_SETTINGS if k in a and k in b)


def differing_items(results: list[ModelResults]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Task -> [(label, item set)] for every task whose models' figures were computed on different
    items (another count, or another item file)."""
    out = {}
    for name in TASKS:
        sets = [(r.label, r.item_sets[name]) for r in results if name in r.item_sets]
        if any(not same_items(a, b) for i, (_, a) in enumerate(sets) for _, b in sets[i + 1:]):
            out[name] = sets
    return out


__all__ = ["ITEM_SETTINGS", "ModelResults", "item_count", "count_text", "item_set", "load_results", "model_folders",
           "same_items", "differing_items"]
