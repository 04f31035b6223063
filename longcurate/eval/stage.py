"""The eval stage: build the item files once, check them against the run's training data, run the tasks
of `eval.run` (`tasks.py`) on every configured model, write the report.

Paths come from the run's layout (`cfg.layout()`, `core.eval_layout.EvalFiles` / `EvalModelFiles`): under
`eval_dir` (default `<output_dir>/eval`)

    probes.jsonl, needle.jsonl     the items every model is asked (`items.py`)
    contamination.json             which items' answers, keys or needles the training data contains
    <label>/model.json             the model whose results the folder holds (`labels.py`: one model per label)
    <label>/<task>/...             each task's results (`tasks.py` says where)
    report.md, plots/*.png         the contamination line first, every figure with its 95% interval
and the stage's manifest at `<output_dir>/eval.manifest.json`.

Models: `eval.models` entries "checkpoint" (= `eval.checkpoint`, default the layout's trained `model`,
`<output_dir>/checkpoint`; skipped with a warning when missing) and "base" (= the run's `model`); other
entries are names or paths. Every step goes through `core.runner`: it is locked (one writer per output),
skipped when complete with the same settings, so a model whose results are complete is never even
loaded, and a task that leaves items failed or pending is reported incomplete: the stats say where,
and `eval run` exits with the shared "incomplete" code after writing all it could.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from longcurate.core.config import to_dict
from longcurate.core.errors import UserError
from longcurate.core.eval_layout import model_label
from longcurate.core.jsonl import read_json_if_valid
from longcurate.core.reader import source_digest
from longcurate.core.runinfo import write_manifest
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.eval.config import EvalRunConfig
from longcurate.eval.items import build_items
from longcurate.eval.labels import model_run
from longcurate.eval.model import EvalModel
from longcurate.eval.tasks import Task, get_task

log = logging.getLogger("longcurate.eval")


def resolve_models(cfg: EvalRunConfig) -> list[tuple[str, str]]:
    """(label, model name or path) for each entry of eval.models that exists."""
    out = []
    for entry in cfg.eval.models:
        if entry == "checkpoint":
            ckpt = Path(cfg.eval.checkpoint) if cfg.eval.checkpoint else cfg.layout().model
            if not (ckpt / "config.json").exists():
                log.warning("eval: no trained checkpoint at %s (no config.json); evaluating without it", ckpt)
                continue
            out.append(("checkpoint", str(ckpt)))
        elif entry == "base":
            out.append(("base", cfg.model))
        else:
            out.append((model_label(entry), entry))
    labels = [lab for lab, _ in out]
    if len(set(labels)) != len(labels):
        raise UserError(f"eval.models gives duplicate labels {labels}")
    return out


def evaluate_model(cfg: EvalRunConfig, label: str, model: str, tasks: list[Task],
                   backend: EvalModel | None = None) -> dict[str, Any]:
    """Run `tasks` on one model into `<eval_dir>/<label>/`: one model interface for all of them (built
    on first use, so a model whose results are complete is never loaded); each task's stats."""
    run = model_run(cfg, label, model, backend)
    stats: dict[str, Any] = {"model": model}
    for task in tasks:
        stats[task.name] = task.runner()(run)
    return stats


def training_data(cfg: EvalRunConfig) -> Path | None:
    """What the run trained on: the mixture, else the samples (None when neither exists yet)."""
    layout = cfg.layout()
    return next((p for p in (layout.mixture, layout.samples) if p.exists()), None)


def contamination_step(cfg: EvalRunConfig, train: Path, evals: list[Path]) -> StepSpec:
    """`<eval_dir>/contamination.json`, policy `redo`: a pass over the training data, redone whenever
    the training data or an item file changes (settings: their paths and digests)."""
    settings = {"train": [[str(train), source_digest(train)]], "eval": [[str(p), source_digest(p)] for p in evals],
                "format": 1}
    return StepSpec("the contamination check", cfg.layout().evals.contamination, settings)


def check_items(cfg: EvalRunConfig, built: dict[str, Path]) -> dict[str, Any] | None:
    """Check the built item files (and the held-out samples) against the run's training data; with
    `eval.require_clean`, any eval text found there stops the stage. None when there is no training data."""
    from longcurate.eval.contamination import require_clean, run_check

    train = training_data(cfg)
    if train is None:
        log.info("eval: no training data in this run (no mixture, no samples): contamination not checked")
        return None
    evals = list(built.values()) + ([cfg.layout().heldout] if cfg.layout().heldout.exists() else [])
    spec = contamination_step(cfg, train, evals)

    def check(run: StepRun) -> dict[str, Any]:
        run_check([train], evals, run.output, progress=True)
        written = read_json_if_valid(run.output)
        return {"exact_items": written["exact_items"], "items": len(written["items"])}

    run_step(spec, check)
    result = read_json_if_valid(spec.output)
    log.info("eval contamination: %d of %d items found in %s", result["exact_items"], len(result["items"]), train)
    if cfg.eval.require_clean:
        require_clean(result, f"eval.require_clean ({spec.output})")
    return result


def write_comparison(cfg: EvalRunConfig, labels: list[str], contamination: dict[str, Any] | None) -> Path | None:
    """The report over every model that has results; None when none has."""
    from longcurate.eval.report import report_models

    evals = cfg.layout().evals
    return report_models([(evals.model(label).folder, label) for label in labels], evals, contamination,
                         missing_ok=True)


def run_stage(cfg: EvalRunConfig) -> dict[str, Any]:
    """The whole stage: item files, the contamination check, the tasks of eval.run on every model of
    eval.models, the report, the stage's manifest."""
    tasks = [get_task(name) for name in cfg.eval.run]
    models = resolve_models(cfg)
    if not models:
        raise UserError("eval: no model to evaluate (eval.models is empty or the checkpoint is missing)")
    built = build_items(cfg, [kind for t in tasks for kind in t.items])
    contamination = check_items(cfg, built)
    stats: dict[str, Any] = {"contamination": None if contamination is None else
                             {"exact_items": contamination["exact_items"], "items": len(contamination["items"])},
                             "models": {}}
    for k, (label, model) in enumerate(models):
        log.info("eval: %s (%s), model %d of %d: %s", label, model, k + 1, len(models), ", ".join(t.name for t in tasks))
        started = time.time()
        stats["models"][label] = evaluate_model(cfg, label, model, tasks)
        took, left = time.time() - started, len(models) - k - 1
        if left and took >= 5:  # (a model whose results were complete says nothing about the next)
            log.info("eval: %s took %.0f s; the %d model(s) left: about %.0f s", label, took, left, took * left)
    report = write_comparison(cfg, [lab for lab, _ in models], contamination)
    stats["report"] = str(report) if report else None
    if report:
        log.info("eval report: %s", report)
    write_manifest(cfg.layout().manifest("eval"), "eval", to_dict(cfg), stats)
    return stats


__all__ = ["resolve_models", "evaluate_model", "training_data", "contamination_step", "check_items",
           "write_comparison", "run_stage"]
