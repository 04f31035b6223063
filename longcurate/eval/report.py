"""The eval report: Markdown tables and PNG plots over one or more models' result folders.

A model's folder holds what the eval tasks wrote; the report reads every registered task's results
there (`tasks.py`, `results.py`) and adds, in registry order, each task's section (`sections.py`) for
the models that have its results: probes, needle (with LongAlign's judge rating when present), answer
NLL, LongBench, LongBench-Chat. The contamination check's line comes first, the failed items last.
Figures computed on different item sets (12 items beside 3, another item file) are never
put side by side silently: the section opens with a warning naming each model's item count, the
command prints it too (`differing_items`).

`report_models` is a step of `core.runner` (`report.md`, policy `redo`): locked while it is written,
skipped when the result files it reads (their digests) and the contamination check are unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from longcurate.core.eval_layout import EvalFiles
from longcurate.core.jsonl import atomic_open, file_digest
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.eval.results import ModelResults, count_text, differing_items, load_results
from longcurate.eval.sections import table
from longcurate.eval.tasks import TASKS, resolve

log = logging.getLogger("longcurate.eval")

REPORT_FORMAT = 2  # the report's layout version: a new one rewrites finished reports (2: item-set warnings)


def contamination_lines(contamination: dict[str, Any] | None) -> list[str]:
    from longcurate.eval.contamination import summary_line

    if contamination is None:
        return ["**Contamination:** not checked (no training data in this run: no mixture, no samples).", ""]
    return [summary_line(contamination) + f" Per item: `{EvalFiles(Path()).contamination.name}`.", ""]


def failed_lines(results: list[ModelResults]) -> list[str]:
    """Every item a task listed as failed (the tasks whose results hold a `failures` list)."""
    fails = [(r.label, name, f) for r in results for name, res in r.tasks.items()
             if isinstance(res.get("failures"), list) for f in res["failures"]]
    if not fails:
        return []
    return ["## Failed items", "", *table(["model", "kind", "id", "error"],
                                          [[m, k, f["id"], f["error"][:120]] for m, k, f in fails])]


def item_set_warning(task: str, sets: list[tuple[str, dict[str, Any]]]) -> str:
    """One line saying that a task's models were measured on different items, and how many each."""
    counts = ", ".join(f"{label} {count_text(s.get('n'))}" for label, s in sets)
    return (f"{task}: the models were measured on different item sets ({counts}; or other item files): "
            "their figures are not comparable side by side; evaluate them on the same items")


def markdown(results: list[ModelResults], figures: dict[str, str], contamination: dict[str, Any] | None = None) -> str:
    """The report's text; `figures` maps a figure name to its path relative to the report."""
    lines = ["# longcurate eval report", "", *contamination_lines(contamination)]
    lines += ["Models: " + ", ".join(f"**{r.label}** (`{r.folder}`)" for r in results), ""]
    differ = differing_items(results)
    for task in TASKS.values():
        section = resolve(task.section)(results, figures)
        if section and task.name in differ:  # the warning right under the section's title
            section = [*section[:2], f"**Not comparable.** {item_set_warning(task.name, differ[task.name])}.", "",
                       *section[2:]]
        lines += section
    lines += failed_lines(results)
    return "\n".join(lines)


def write_report(results: list[ModelResults], out_dir: str | Path, contamination: dict[str, Any] | None = None) -> Path:
    """Write `report.md` and `plots/*.png` into `out_dir`; returns the report's path. `contamination`:
    the check's JSON (its line opens the report; None says it was not checked)."""
    evals = EvalFiles(Path(out_dir))
    figures: dict[str, str] = {}
    for task in TASKS.values():
        if task.figures is not None:
            figures.update(resolve(task.figures)(results, evals))
    with atomic_open(evals.report) as f:
        f.write(markdown(results, figures, contamination))
    return evals.report


def report_models(folders: list[tuple[Path, str | None]], evals: EvalFiles, contamination: dict[str, Any] | None,
                  *, missing_ok: bool = False) -> Path | None:
    """The report over the models' folders (label None: the folder's name) into `evals`, as a step;
    a folder without results is skipped with `missing_ok` (None when no folder has any), else an error."""
    results = []
    for folder, label in folders:
        try:
            results.append(load_results(folder, label))
        except FileNotFoundError:
            if not missing_ok:
                raise
    if not results:
        return None
    settings = {"models": [[r.label, str(r.folder), {t: file_digest(p) for t, p in r.files.items()}] for r in results],
                "contamination": None if contamination is None else file_digest(evals.contamination),
                "format": REPORT_FORMAT}

    for task, sets in differing_items(results).items():
        log.warning("eval report: %s", item_set_warning(task, sets))

    def work(run: StepRun) -> dict[str, Any]:
        write_report(results, evals.folder, contamination)
        return {"models": len(results)}

    run_step(StepSpec("the eval report", evals.report, settings, quarantine=False), work)
    return evals.report


__all__ = ["REPORT_FORMAT", "contamination_lines", "failed_lines", "item_set_warning", "markdown", "write_report",
           "report_models"]
