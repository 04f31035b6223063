"""The names inside an eval folder: the items every model is scored on, one folder per model label,
LongBench's and LongBench-Chat's own formats, and the report. `core.layout.RunLayout` puts the eval
folder in a run and `core.ablation_layout.AblationLayout` in an ablation; both read the names here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from longcurate.core.errors import UserError


def model_label(name: str) -> str:
    """A model name or path as a folder name: `runs/demo/checkpoint` -> `checkpoint`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name or name).strip("_") or "model"


def check_label(label: str) -> str:
    """An eval label names one folder under the eval folder: letters, digits, `.`, `_`, `-`, and not
    `.` or `..`, so no label (`--label ../../x`) can put results anywhere else."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", label or "") or label in (".", ".."):
        raise UserError(f"--label {label!r} must be a name (letters, digits, '.', '_', '-'), not a path")
    return label


@dataclass(frozen=True)
class EvalModelFiles:
    """One model's eval results, `<eval_dir>/<label>/` (or any such folder `eval report` is given):

        model.json                                 the model whose results the folder holds
        <task>/predictions.jsonl, <task>/results.json   probes, needle (one line per item; the figures)
        nll/items.jsonl, nll/results.json          the answer NLL per item; its figures
        longbench/pred/ (pred_e/ for LongBench-E)  LongBench's own prediction folder (`LongBenchFiles`)
        longbench-chat/pred.jsonl, result.json     LongBench-Chat's answers and ratings
    """

    folder: Path

    @property
    def owner(self) -> Path:
        return self.folder / "model.json"

    def task_dir(self, task: str) -> Path:
        return self.folder / task

    def predictions(self, task: str) -> Path:
        return self.task_dir(task) / "predictions.jsonl"

    def results(self, task: str) -> Path:
        return self.task_dir(task) / "results.json"

    @property
    def nll_items(self) -> Path:
        return self.task_dir("nll") / "items.jsonl"

    def longbench(self, e: bool) -> "LongBenchFiles":
        return LongBenchFiles(self.task_dir("longbench") / ("pred_e" if e else "pred"))

    @property
    def longbench_chat(self) -> "ChatFiles":
        return ChatFiles(self.task_dir("longbench-chat"))


@dataclass(frozen=True)
class LongBenchFiles:
    """A LongBench prediction folder in LongBench's own format, so its tools and ours read each other's
    files: `<task>.jsonl` predictions, `result.json`, and `result.rejected.jsonl` (every failure)."""

    folder: Path

    def predictions(self, task: str) -> Path:
        return self.folder / f"{task}.jsonl"

    @property
    def result(self) -> Path:
        return self.folder / "result.json"

    @property
    def rejected(self) -> Path:
        return self.folder / "result.rejected.jsonl"


@dataclass(frozen=True)
class ChatFiles:
    """LongBench-Chat's folder: `pred.jsonl` (`{"idx", "pred"}` lines) and `result.json` (the ratings)."""

    folder: Path

    @property
    def predictions(self) -> Path:
        return self.folder / "pred.jsonl"

    @property
    def result(self) -> Path:
        return self.folder / "result.json"


@dataclass(frozen=True)
class EvalFiles:
    """The eval folder's own files beside the models' folders: the items every model is scored on, the
    contamination check, the report and its plots (`report.md` links them as `plots/<name>.png`), the
    judge's cache."""

    folder: Path

    def model(self, label: str) -> EvalModelFiles:
        return EvalModelFiles(self.folder / check_label(label))

    @property
    def probes(self) -> Path:
        """The probe items every model of the run is scored on (`eval build`)."""
        return self.folder / "probes.jsonl"

    @property
    def needle(self) -> Path:
        """The needle items, built beside the probes."""
        return self.folder / "needle.jsonl"

    @property
    def contamination(self) -> Path:
        return self.folder / "contamination.json"

    @property
    def report(self) -> Path:
        return self.folder / "report.md"

    @property
    def judge_cache(self) -> Path:
        """The judge's replies, keyed by request, unless `eval.judge.cache_dir` puts them elsewhere."""
        return self.folder / "judge-cache"

    @staticmethod
    def plot_link(name: str) -> str:
        """A plot's path as the report links it (relative to the report)."""
        return f"plots/{name}.png"

    def plot(self, name: str) -> Path:
        return self.folder / self.plot_link(name)


__all__ = ["EvalFiles", "EvalModelFiles", "LongBenchFiles", "ChatFiles", "model_label", "check_label"]
