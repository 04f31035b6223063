"""The eval tasks, as a registry: what each one is, not how the stage dispatches it.

A task declares its name, what it needs from the model (`loglikelihood`, `generate`) and whether it
needs a judge, the shared item files it reads, where its results are (`core.layout`), its metrics with
their direction and aggregation, and, for the tasks measured item by item, its per-item file. The code
that runs it, and its section of the report, are named as `"module:function"` and imported only when
used, so reading the registry (config validation, the ablation's bookkeeping) loads nothing heavy.

`eval run` (`eval.run`), the config's validation, the report and the ablation read task names, files
and metric directions from here; no other list of task names exists. FILM's released VaL files are
scored from predictions the user gives (`eval val`), not per model of a run, so VaL is not a task here.

A task's runner takes one `model.ModelRun` and returns its stats, with `complete: False` and
`pending` / `failed` counts when items are left (the shared "incomplete" rule of `core.runner`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from longcurate.core.errors import UserError
from longcurate.core.eval_layout import EvalModelFiles

NEEDS = ("loglikelihood", "generate", "judge")
# How a metric's figure is made from per-item values (the report prints intervals for the means).
AGGREGATIONS = {
    "mean": "mean over items (95% bootstrap interval)",
    "span mean": "mean over position spans of the span means",
    "span gap": "max - min over position spans of the span means",
    "task mean": "mean over tasks of each task's score",
}


@dataclass(frozen=True)
class Metric:
    """One figure of a task's results: its key there (dotted for nested keys), direction, aggregation."""

    name: str
    higher_is_better: bool
    aggregation: str
    unit: str

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"metric {self.name}: unknown aggregation {self.aggregation!r}; known: {list(AGGREGATIONS)}")

    @property
    def better(self) -> str:
        return "higher" if self.higher_is_better else "lower"

    def value(self, results: dict[str, Any]) -> Any:
        """The figure in a task's results (None when absent)."""
        node: Any = results
        for part in self.name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node


@dataclass(frozen=True)
class PerItem:
    """A task's per-item file: one line per item with its value (the task's first metric, item by item),
    where the evidence sits (0 = start of the context, 1 = end), and the item's source (fixed, or the
    line's own `source` field)."""

    file: Callable[[EvalModelFiles], Path]
    value: str
    position: str
    source: str | None = None


@dataclass(frozen=True)
class Task:
    name: str
    needs: tuple[str, ...]
    metrics: tuple[Metric, ...]  # the first one is the task's primary figure
    run: str  # "module:function": runs the task for one model (a `ModelRun`), returns its stats
    results: Callable[[EvalModelFiles], tuple[Path, ...]]  # where its results are; the first found is read
    section: str  # "module:function": its section of the report, (results, figures) -> lines
    figures: str | None = None  # "module:function": its plots, (results, EvalFiles) -> {figure: link}
    items: tuple[str, ...] = ()  # the shared item files it reads: probes, needle
    per_item: PerItem | None = None

    def __post_init__(self) -> None:
        bad = [n for n in self.needs if n not in NEEDS]
        if bad or not self.metrics:
            raise ValueError(f"task {self.name}: needs must be among {NEEDS} (got {bad}) and it needs a metric")

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    def runner(self) -> Callable[..., dict[str, Any]]:
        return resolve(self.run)

    def results_file(self, files: EvalModelFiles) -> Path | None:
        """Its results in one model's folder (None when it has none there)."""
        return next((p for p in self.results(files) if p.exists()), None)


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"eval task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def task_names() -> list[str]:
    """The names `eval.run` accepts, in registry order (the report's order)."""
    return list(TASKS)


def get_task(name: str) -> Task:
    """The task of an `eval.run` entry; an unknown name is a UserError listing the known ones."""
    task = TASKS.get(name)
    if task is None:
        raise UserError(f"unknown eval task {name!r}; eval.run takes {', '.join(TASKS)}")
    return task


def measured_tasks() -> list[str]:
    """The tasks with a per-item file (what the ablation compares item by item)."""
    return [t.name for t in TASKS.values() if t.per_item is not None]


def resolve(ref: str) -> Callable[..., Any]:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


_PROBE_ACCURACY = "probe generation accuracy (0-1)"
register(Task(
    "probes", needs=("generate",), items=("probes",),
    metrics=(Metric("all.mean", True, "mean", _PROBE_ACCURACY), Metric("all.avg", True, "span mean", _PROBE_ACCURACY),
             Metric("all.gap", False, "span gap", _PROBE_ACCURACY)),
    run="longcurate.eval.retrieval:probes_task", results=lambda f: (f.results("probes"),),
    section="longcurate.eval.sections:probe_lines", figures="longcurate.eval.sections:probe_figures",
    per_item=PerItem(lambda f: f.predictions("probes"), value="score", position="key_token_fraction", source="probe")))
register(Task(
    "needle", needs=("generate",), items=("needle",),
    metrics=(Metric("mean", True, "mean", "needle key-word recall (0-1)"),
             Metric("judge.mean", True, "mean", "judge rating (1-10), with eval.needle.judge")),
    run="longcurate.eval.retrieval:needle_task", results=lambda f: (f.results("needle"),),
    section="longcurate.eval.sections:needle_lines", figures="longcurate.eval.sections:needle_figures"))
register(Task(
    "nll", needs=("loglikelihood",), items=("probes",),
    metrics=(Metric("all", False, "mean", "answer NLL, nats per answer token"),),
    run="longcurate.eval.nll:nll_task", results=lambda f: (f.results("nll"),),
    section="longcurate.eval.sections:nll_lines", figures="longcurate.eval.sections:nll_figures",
    per_item=PerItem(lambda f: f.nll_items, value="nll", position="position")))
register(Task(
    "longbench", needs=("generate",),
    metrics=(Metric("average", True, "task mean", "LongBench score (0-100)"),),
    run="longcurate.eval.longbench:longbench_task",
    results=lambda f: (f.longbench(False).result, f.longbench(True).result),
    section="longcurate.eval.sections:longbench_lines"))
register(Task(
    "longbench-chat", needs=("generate", "judge"),
    metrics=(Metric("score", True, "mean", "LongBench-Chat score (judge rating 1-10 x 10)"),),
    run="longcurate.eval.longbench_chat:chat_task", results=lambda f: (f.longbench_chat.result,),
    section="longcurate.eval.sections:longbench_chat_lines"))

__all__ = ["Task", "Metric", "PerItem", "TASKS", "NEEDS", "AGGREGATIONS", "register", "get_task", "task_names",
           "measured_tasks", "resolve"]
