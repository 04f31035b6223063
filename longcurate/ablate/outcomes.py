"""Per-item outcomes of one evaluated model, read from the per-item file its eval task wrote. Which
tasks have one, where it is, which field holds the value, which direction is better and what the value
is all come from eval's task registry (`longcurate.eval.tasks`): e.g. `nll` (`nll/items.jsonl`, the
answer's mean NLL given its long context; lower is better) and `probes` (`probes/predictions.jsonl`,
generation accuracy 0..1 with where the key sits; higher is better).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from longcurate.core.errors import UserError
from longcurate.core.eval_layout import EvalModelFiles
from longcurate.core.jsonl import read_jsonl
from longcurate.eval.tasks import TASKS, PerItem, measured_tasks

# measure -> which direction is better, and what the value is (the task's primary metric)
BETTER = {m: TASKS[m].primary.better for m in measured_tasks()}
UNITS = {m: TASKS[m].primary.unit for m in measured_tasks()}


@dataclass(frozen=True)
class Outcome:
    """One item's value for one model; `key` is unique across sources (`probe:<id>`, `heldout:<id>`)."""

    key: str
    source: str
    task: str
    position: float | None  # where the evidence sits in the context, 0 = start, 1 = end
    value: float


def per_item(measure: str) -> PerItem:
    task = TASKS.get(measure)
    if task is None or task.per_item is None:
        raise UserError(f"{measure!r} is not an eval task measured item by item; those are {measured_tasks()}")
    return task.per_item


def outcome_file(model_eval_dir: Path, measure: str) -> Path:
    """Where one model's per-item outcomes of `measure` are (`<eval>/<label>/...`)."""
    return per_item(measure).file(EvalModelFiles(Path(model_eval_dir)))


def parse_outcome(obj: dict, spec: PerItem, where: str) -> Outcome:
    try:
        source = spec.source or str(obj["source"])
        pos = obj.get(spec.position)
        return Outcome(f"{source}:{obj['id']}", source, str(obj.get("task", "")), None if pos is None else float(pos),
                       float(obj[spec.value]))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: not a per-item line with '{spec.value}' ({e!r})") from None


def read_outcomes(model_eval_dir: Path, measure: str) -> dict[str, Outcome]:
    """Every item's outcome of `measure` for one model (a later line for the same item wins)."""
    spec, path = per_item(measure), outcome_file(model_eval_dir, measure)
    if not path.exists():
        raise UserError(f"{path} not found: the run's eval did not measure {measure}")
    out = {}
    for line, obj in read_jsonl(path):
        o = parse_outcome(obj, spec, f"{path}:{line}")
        out[o.key] = o
    return out


__all__ = ["Outcome", "BETTER", "UNITS", "outcome_file", "read_outcomes"]
