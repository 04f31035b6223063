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

import logging
import os
from pathlib import Path
from typing import Any

from longcurate.core.errors import UserError
from longcurate.core.eval_layout import LongBenchFiles
from longcurate.core.jsonl import file_digest, read_json_if_valid
from longcurate.core.reader import source_digest
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.eval import metrics
from longcurate.eval.config import EvalRunConfig, LongBenchConfig
from longcurate.eval.labels import model_identity, model_run
from longcurate.eval.longbench_data import Failure, data_file, discover_tasks, load_data, load_local
from longcurate.eval.longbench_defaults import PROMPT_VERSION
from longcurate.eval.longbench_predict import predict_longbench
from longcurate.eval.longbench_prompts import load_maxlens, load_prompts
from longcurate.eval.longbench_score import score_dir, write_result
from longcurate.eval.model import EvalModel, ModelRun, task_stats

log = logging.getLogger("longcurate.eval.longbench")


def score_only(pred_dir: str | os.PathLike, *, output_dir: str | os.PathLike | None = None,
               tasks: list[str] | None = None, e: bool = False, data_dir: str | None = None,
               limit: int | None = None) -> dict[str, Any]:
    """Score existing LongBench-format predictions into `<output_dir or pred_dir>/result.json` (one
    step: locked, skipped when the predictions and settings are the same); with `data_dir` (its first
    `limit` items per task), also check that no prediction is missing."""
    if not Path(pred_dir).is_dir():
        raise FileNotFoundError(f"prediction folder not found: {pred_dir}")
    files, given = LongBenchFiles(Path(output_dir or pred_dir)), LongBenchFiles(Path(pred_dir))
    predictions = {t: file_digest(given.predictions(t)) for t in metrics.TASKS if given.predictions(t).exists()}
    settings = {"predictions": predictions, "tasks": tasks, "e": e, "limit": limit,
                "data": source_digest(data_dir) if data_dir else None, "format": 1}

    def work(run: StepRun) -> dict[str, Any]:
        data, data_failures, wanted = None, [], tasks
        if data_dir:
            wanted = tasks or list(predictions)
            data = load_local(data_dir, wanted, e, data_failures, limit)
        result, failures = score_dir(pred_dir, tasks=wanted or None, e=e, data=data, extra_failures=data_failures)
        result["pred_dir"] = str(pred_dir)
        write_result(files, result, failures)
        return {"average": result["average"], "failures": result["num_failures"]}

    stats = run_step(StepSpec("the LongBench scores", files.result, settings, quarantine=False), work)
    return {**(read_json_if_valid(files.result) or {}), "_path": str(files.result), "_stats": stats}


def generation_settings(cfg: EvalRunConfig, model: str, max_input_tokens: int | None) -> dict[str, Any]:
    """What LongBench (and LongBench-Chat, with its own `max_input_tokens`) predictions depend on besides
    the prompt and its length: the request hash's settings."""
    g = cfg.eval.generate
    return {**model_identity(model), "backend": g.backend, "template": g.template, "decoding": "greedy",
            "max_input_tokens": max_input_tokens, "max_context": g.max_context}


def task_lengths(cfg: EvalRunConfig, tasks: list[str]) -> dict[str, int]:
    """Max new tokens per task: `eval.generate.max_new_tokens` (`--max-new-tokens`) when set, else the
    task's entry of `eval.longbench.maxlen_file`, else LongBench's own."""
    maxlens = load_maxlens(cfg.eval.longbench.maxlen_file)  # every known task has one (ours)
    return {t: cfg.eval.generate.new_tokens(maxlens[t]) for t in tasks}


def chosen_tasks(lb: LongBenchConfig, allow_download: bool) -> list[str]:
    """The tasks to run: `eval.longbench.tasks`, else every task with a file in `data_dir`, else (hub)
    every task of LongBench (or LongBench-E)."""
    if lb.data_dir:
        tasks = list(lb.tasks) or discover_tasks(lb.data_dir, lb.e)
        if not tasks:
            raise FileNotFoundError(f"no LongBench task files ({'<task>_e' if lb.e else '<task>'}.jsonl) in {lb.data_dir}")
        return tasks
    if not allow_download:
        raise FileNotFoundError("LongBench needs eval.longbench.data_dir (a folder of <task>.jsonl files), "
                                "or allow_download=true to read the hub dataset")
    return list(lb.tasks) or list(metrics.E_TASKS if lb.e else metrics.TASKS)


def longbench_step(run: ModelRun, files: LongBenchFiles, tasks: list[str], limit: int | None) -> StepSpec:
    """`<label>/longbench/pred/` (+ result.json), policy `redo`: predictions already made for the same
    request are kept by their hash. Settings: the generation settings, the tasks, their data (each
    file's digest, or the hub dataset's name), the limit, the prompts and the lengths."""
    cfg, lb = run.cfg, run.cfg.eval.longbench
    data = {t: source_digest(data_file(lb.data_dir, t, lb.e)) for t in tasks} if lb.data_dir else lb.hf_dataset
    settings = {**generation_settings(cfg, run.model, lb.max_input_tokens), "tasks": tasks, "e": lb.e, "data": data,
                "limit": limit, "prompts": file_digest(lb.prompt_file) if lb.prompt_file else PROMPT_VERSION,
                "max_new_tokens": task_lengths(cfg, tasks), "format": 1}
    return StepSpec(f"LongBench on {run.label}", files.folder, settings, also_outputs=(files.result,), quarantine=False)


def longbench_task(run: ModelRun, progress: bool = True) -> dict[str, Any]:
    """Predict (resumable) and score LongBench for one model into `<label>/longbench/pred/`; a model
    whose predictions are complete is never loaded. Offline without `eval.longbench.data_dir`, the
    stage's LongBench is left out (a warning), not an error."""
    cfg, lb = run.cfg, run.cfg.eval.longbench
    if lb.data_dir is None and not cfg.allow_download:
        log.warning("eval: longbench asked for but eval.longbench.data_dir is not set (offline); skipped")
        return {"not_run": "eval.longbench.data_dir is not set (offline)"}
    files = run.files.longbench(lb.e)
    limit = lb.limit if lb.limit is not None else cfg.eval.limit
    tasks = chosen_tasks(lb, cfg.allow_download)

    def work(step: StepRun) -> dict[str, Any]:
        data_failures: list[Failure] = []
        data = load_data(lb, cfg.allow_download, data_failures, limit=limit)
        prompts, maxlens = load_prompts(lb.prompt_file), task_lengths(cfg, list(data))
        for task in data:
            if task not in prompts:
                raise UserError(f"LongBench task {task!r} has no prompt template")
        errors, counts = predict_longbench(data, files, run.backend, prompts=prompts, maxlens=maxlens,
                                           settings=generation_settings(cfg, run.model, lb.max_input_tokens),
                                           max_input_tokens=lb.max_input_tokens, progress=progress)
        result, failures = score_dir(files.folder, e=lb.e, data=data, known_errors=errors, extra_failures=data_failures)
        result.update({"model": run.model, "label": run.label,
                       "prompt_version": PROMPT_VERSION if not lb.prompt_file else f"file:{lb.prompt_file}",
                       "max_input_tokens": lb.max_input_tokens, "max_new_tokens": maxlens})
        write_result(files, result, failures)
        return task_stats({"average": result["average"], "failures": result["num_failures"], "predictions": counts},
                          failed=counts["errors"])

    return run_step(longbench_step(run, files, tasks, limit), work)


def run_longbench(cfg: EvalRunConfig, *, label: str | None = None, model: str | None = None,
                  backend: EvalModel | None = None, progress: bool = True) -> dict[str, Any]:
    """`eval longbench`: LongBench for `model` (default: the run's model) into
    `<eval_dir>/<label>/longbench/` (label default: from the model's name); its result.json, with the
    step's stats under `_stats` and the file under `_path`. Without data it stops (the stage only warns)."""
    chosen_tasks(cfg.eval.longbench, cfg.allow_download)
    run = model_run(cfg, label, model or cfg.model, backend)
    stats = longbench_task(run, progress=progress)
    path = run.files.longbench(cfg.eval.longbench.e).result
    return {**(read_json_if_valid(path) or {}), "_path": str(path), "_stats": stats}


__all__ = ["score_only", "generation_settings", "task_lengths", "chosen_tasks", "longbench_step", "longbench_task",
           "run_longbench"]
