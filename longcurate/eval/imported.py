"""Predictions made elsewhere (`eval longbench --score-only PRED_DIR`, `eval longbench-chat
--score-only PRED.jsonl`) scored into the run's layout, like every other result: the scores go to
`<eval dir>/<label>/longbench/pred/result.json` (`pred_e/` for LongBench-E) or
`<label>/longbench-chat/result.json`, so `eval report` finds them beside the models evaluated here;
the predictions are read where they are, and the result names them.

The label is `--label`; else, for predictions that already sit in a label's folder
(`<label>/longbench/pred`), that label; else the folder's (or file's) own name. The label's
`model.json` names the predictions, so another model's results are never mixed into it
(`labels.claim`); predictions in their own label's folder are scored in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from longcurate.core.eval_layout import ChatFiles, LongBenchFiles, check_label, model_label
from longcurate.eval.labels import claim

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig


def imported_label(given: Path, task_dir: str, label: str | None) -> str:
    """`--label`, else the label whose folder holds `given` (`<label>/<task_dir>/...`), else its name."""
    if label:
        return check_label(label)
    if given.parent.name == task_dir and given.parent.parent.name:
        return check_label(given.parent.parent.name)
    return model_label(given.name if given.is_dir() else given.stem)


def longbench_results(cfg: EvalRunConfig, pred_dir: Path, label: str | None) -> LongBenchFiles:
    """Where the scores of the LongBench predictions in `pred_dir` go: `<label>/longbench/pred[_e]/`."""
    if not pred_dir.is_dir():
        raise FileNotFoundError(2, "prediction folder not found", str(pred_dir))
    base = cfg.layout().evals.model(imported_label(pred_dir, "longbench", label))
    files = base.longbench(cfg.eval.longbench.e)
    if files.folder.resolve() != pred_dir.resolve():
        claim(base, str(pred_dir))
    return files


def chat_results(cfg: EvalRunConfig, pred_file: Path, label: str | None) -> ChatFiles:
    """Where the ratings of the LongBench-Chat predictions in `pred_file` go: `<label>/longbench-chat/`."""
    if not pred_file.is_file():
        raise FileNotFoundError(2, "prediction file not found", str(pred_file))
    base = cfg.layout().evals.model(imported_label(pred_file, "longbench-chat", label))
    files = base.longbench_chat
    if files.predictions.resolve() != pred_file.resolve():
        claim(base, str(pred_file))
    return files


__all__ = ["imported_label", "longbench_results", "chat_results"]
