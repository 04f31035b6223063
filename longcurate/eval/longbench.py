"""LongBench (v1) and LongBench-E entry points: predict and score a model, or score existing predictions.

The work is in one module per job: `longbench_data` (records, reading), `longbench_prompts`
(templates, truncation in the middle), `longbench_predict` (the shared prediction loop, LongBench's
file format), `longbench_score` (metrics per task, result.json). Files follow LongBench's own layout,
so its tools and ours read each other's output:

    <data_dir>/<task>.jsonl                          data (<task>_e.jsonl for LongBench-E)
    <eval_dir>/<label>/longbench/pred/<task>.jsonl   one model's predictions (pred_e/ for -E)
    <eval_dir>/<label>/longbench/pred/result.json    its scores, averages, counts and failures

One folder per model (`labels.py`): the label is `--label`, else the model's last path component, and
the folder's `model.json` names the model, so no run ever reads or reports another model's predictions.
Generation length per task (`task_lengths`): `eval.generate.max_new_tokens` (`--max-new-tokens`) when
set, else the task's entry of `eval.longbench.maxlen_file`, else LongBench's own (`DEFAULT_MAXLEN`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.eval import metrics
from longcurate.eval.generate import Generator, make_generator
from longcurate.eval.labels import model_identity, results_folder
from longcurate.eval.longbench_data import Failure, load_data, load_local
from longcurate.eval.longbench_defaults import PROMPT_VERSION
from longcurate.eval.longbench_predict import pred_dir_for, predict_longbench
from longcurate.eval.longbench_prompts import load_maxlens, load_prompts
from longcurate.eval.longbench_score import score_dir, write_result
from longcurate.eval.predict import LazyGenerator

if TYPE_CHECKING:
    from longcurate.config import RunConfig


def score_only(pred_dir: str | os.PathLike, *, output_dir: str | os.PathLike | None = None,
               tasks: list[str] | None = None, e: bool = False, data_dir: str | None = None,
               limit: int | None = None) -> dict[str, Any]:
    """Score existing LongBench-format predictions; with `data_dir` (its first `limit` items per task),
    also check that no prediction is missing."""
    if not Path(pred_dir).is_dir():
        raise FileNotFoundError(f"prediction folder not found: {pred_dir}")
    data = None
    data_failures: list[Failure] = []
    if data_dir:
        tasks = tasks or [t for t in metrics.TASKS if (Path(pred_dir) / f"{t}.jsonl").exists()]
        data = load_local(data_dir, tasks, e, data_failures, limit)
    result, failures = score_dir(pred_dir, tasks=tasks or None, e=e, data=data, extra_failures=data_failures)
    result["pred_dir"] = str(pred_dir)
    path = write_result(output_dir or pred_dir, result, failures)
    result["_path"] = str(path)
    return result


def generation_settings(cfg: RunConfig, model: str, max_input_tokens: int | None) -> dict[str, Any]:
    """What LongBench (and LongBench-Chat, with its own `max_input_tokens`) predictions depend on besides
    the prompt and its length: the request hash's settings."""
    g = cfg.eval.generate
    return {**model_identity(model), "backend": g.backend, "template": g.template, "decoding": "greedy",
            "max_input_tokens": max_input_tokens, "max_context": g.max_context}


def task_lengths(cfg: RunConfig, tasks: list[str]) -> dict[str, int]:
    """Max new tokens per task: `eval.generate.max_new_tokens` (`--max-new-tokens`) when set, else the
    task's entry of `eval.longbench.maxlen_file`, else LongBench's own."""
    maxlens = load_maxlens(cfg.eval.longbench.maxlen_file)  # every known task has one (ours)
    return {t: cfg.eval.generate.new_tokens(maxlens[t]) for t in tasks}


def run_longbench(cfg: RunConfig, *, label: str | None = None, model: str | None = None,
                  generator: Generator | None = None, progress: bool = True) -> dict[str, Any]:
    """Predict (resumable) and score LongBench for `model` (default: the run's model) into
    `<eval_dir>/<label>/longbench/` (label default: from the model's name).

    `generator` is built with `make_generator` when not given, and only when a prediction is missing
    or stale, so a finished run redoes nothing.
    """
    lb = cfg.eval.longbench
    model = model or cfg.model
    out = results_folder(cfg, label, model) / "longbench"
    limit = lb.limit if lb.limit is not None else cfg.eval.limit
    data_failures: list[Failure] = []
    data = load_data(lb, cfg.allow_download, data_failures, limit=limit)
    prompts, maxlens = load_prompts(lb.prompt_file), task_lengths(cfg, list(data))
    for task in data:
        if task not in prompts:
            raise UserError(f"LongBench task {task!r} has no prompt template")
    gen = generator if generator is not None else LazyGenerator(lambda: make_generator(cfg, model))
    pred_dir = pred_dir_for(out, lb.e)
    errors, stats = predict_longbench(data, pred_dir, gen, prompts=prompts, maxlens=maxlens,
                                      settings=generation_settings(cfg, model, lb.max_input_tokens),
                                      max_input_tokens=lb.max_input_tokens, progress=progress)
    result, failures = score_dir(pred_dir, e=lb.e, data=data, known_errors=errors, extra_failures=data_failures)
    result["model"] = model
    result["label"] = out.parent.name
    result["prompt_version"] = PROMPT_VERSION if not lb.prompt_file else f"file:{lb.prompt_file}"
    result["max_input_tokens"] = lb.max_input_tokens
    result["max_new_tokens"] = maxlens
    path = write_result(pred_dir, result, failures)
    result["_path"] = str(path)
    result["_stats"] = stats
    return result


__all__ = ["score_only", "generation_settings", "task_lengths", "run_longbench"]
