"""One model's eval results, as the report reads them: every registered task's results file found in
the model's folder (`tasks.Task.results`), by task name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longcurate.core.layout import EvalModelFiles
from longcurate.eval.tasks import TASKS


@dataclass
class ModelResults:
    label: str
    folder: Path
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task name -> its results
    files: dict[str, Path] = field(default_factory=dict)  # task name -> the file they were read from

    def get(self, task: str) -> dict[str, Any] | None:
        """A task's results (None when the model has none)."""
        return self.tasks.get(task)


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
    return ModelResults(label or folder.name, folder, tasks, found)


__all__ = ["ModelResults", "load_results"]
