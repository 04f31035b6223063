"""The retrieval tasks, probes and needle: their items through the model's `generate` (the shared
loop of `predict.py`), per-item scores and results. A generation error fails its own item only: it is
counted and listed in the results, the rest are scored, and the task is incomplete (`core.runner`),
so the command exits with the shared "incomplete" code and the next run retries just that item.

Each task is one step per model (`probes_task`, `needle_task`; `tasks.py` registers them): its output
is `<label>/<task>/predictions.jsonl` with `results.json` beside it, locked while it runs and skipped
when complete with the same settings (the model, the generation settings, the item file's digest, the
limit), so a finished model is not even loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from longcurate.core.jsonl import Rejects, rejected_path, write_json
from longcurate.core.prompts import user_prompt
from longcurate.core.reader import read_parsed, source_digest
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.eval.item_checks import check_needle
from longcurate.eval.items import ensure_needles, ensure_probes
from longcurate.eval.labels import model_identity
from longcurate.eval.model import EvalModel, GenRequest, ModelRun, task_stats
from longcurate.eval.needle import judge_needles
from longcurate.eval.predict import Failed, predict
from longcurate.eval.probes import Probe
from longcurate.eval.scoring import aggregate_needle, aggregate_probes, needle_recall, score_probe

log = logging.getLogger("longcurate.eval")


def load_items(path: str | Path, parse: Callable[[dict[str, Any]], Any] | None = None,
               limit: int | None = None, rejects_path: str | Path | None = None) -> tuple[list[dict[str, Any]], Rejects]:
    """Read an items file (any record file `core.reader.read_rows` reads: JSONL, JSON, Parquet, a
    datasets folder); malformed records (bad JSON, or `parse` raising) are quarantined in `rejects_path`
    (default `<file>.read.rejected.jsonl`) with file, line and field, and the rest go on. Items are the
    raw objects: `parse` only validates."""
    path = Path(path)
    rejects = Rejects(Path(rejects_path) if rejects_path else rejected_path(path.with_name(path.stem + ".read.jsonl")))
    items = []
    for row, _ in read_parsed(path, parse or (lambda obj: obj), rejects):
        items.append(row.record)
        if limit is not None and len(items) >= limit:
            break  # lines after the limit are not read (nor quarantined)
    rejects.close()
    if rejects.total:
        log.warning("%s: %s", path, rejects.summary())
    return items, rejects


def _finish(kind: str, results_path: Path, model: str, scored: list[dict[str, Any]], failures: list[Failed],
            n_items: int, summary: dict[str, Any], meta: dict[str, Any] | None) -> dict[str, Any]:
    results = {"kind": kind, "model": model, **(meta or {}), "n_items": n_items, "n_scored": len(scored),
               "n_failed": len(failures), "failures": [f.to_dict() for f in failures], **summary}
    write_json(results_path, results)
    if failures:
        log.warning("%s on %s: %d of %d items failed (listed in %s)", kind, model, len(failures), n_items,
                    results_path)
    return results


def _settings(model: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    return {**model_identity(model), **((meta or {}).get("generation") or {})}


def _scored(fields: tuple[str, ...], score: Callable[[dict[str, Any], str], float]) -> Callable[[dict[str, Any], str], dict[str, Any]]:
    """A prediction line: the item's `fields`, the prediction and its score."""
    def record(item: dict[str, Any], pred: str) -> dict[str, Any]:
        return {**{k: item[k] for k in fields if k in item}, "pred": pred, "score": score(item, pred)}
    return record


def run_probes(generator: EvalModel, items: list[dict[str, Any]], predictions: str | Path, results: str | Path, *,
               model: str, span: int, max_new_tokens: int, meta: dict[str, Any] | None = None,
               desc: str | None = None) -> dict[str, Any]:
    """Predict, score and aggregate probe items into `predictions` (one line per item) and `results`
    (`desc`: a progress bar with its ETA over the items)."""
    done = predict(
        generator, items, predictions,
        request=lambda it: GenRequest(it["id"], user_prompt(it["context"], it["instruction"]), max_new_tokens),
        record=_scored(("id", "task", "set_id", "position_id", "key_token_fraction"), score_probe),
        settings=_settings(model, meta), desc=desc)
    return _finish("probes", Path(results), model, done.records, done.failures, len(items),
                   aggregate_probes(done.records, span), meta)


def run_needle(generator: EvalModel, items: list[dict[str, Any]], predictions: str | Path, results: str | Path, *,
               model: str, max_new_tokens: int, meta: dict[str, Any] | None = None,
               desc: str | None = None) -> dict[str, Any]:
    """Predict, score and aggregate needle items into `predictions` (one line per item) and `results`
    (`desc`: a progress bar with its ETA over the items)."""
    done = predict(
        generator, items, predictions,
        request=lambda it: GenRequest(it["id"], user_prompt(it["context"], it["question"]), max_new_tokens),
        record=_scored(("id", "length", "depth"), lambda it, pred: needle_recall(pred, it["key_words"])),
        settings=_settings(model, meta), desc=desc)
    return _finish("needle", Path(results), model, done.records, done.failures, len(items),
                   aggregate_needle(done.records), meta)


# --- the tasks (one step per model) -------------------------------------------------------------

def retrieval_step(run: ModelRun, task: str, items: Path, max_new_tokens: int, **extra: Any) -> StepSpec:
    """`<label>/<task>/predictions.jsonl` (+ results.json), policy `redo`: predictions already made for
    the same request are kept by their hash, so a redo pays only for what changed."""
    cfg = run.cfg
    settings = {**model_identity(run.model), **run.generation(max_new_tokens), "items": source_digest(items),
                "limit": cfg.eval.limit, **extra, "format": 1}
    return StepSpec(f"the {task} of {run.label}", run.files.predictions(task), settings,
                    also_outputs=(run.files.results(task),))


def probes_task(run: ModelRun) -> dict[str, Any]:
    """The VaL-style probes on one model: predictions, per-item scores, span aggregates."""
    cfg = run.cfg
    items_path = ensure_probes(cfg)
    n = cfg.eval.generate.new_tokens(cfg.eval.probes.max_new_tokens)

    def work(step: StepRun) -> dict[str, Any]:
        items, rejects = load_items(items_path, Probe.from_dict, cfg.eval.limit, step.rejected)
        res = run_probes(run.backend, items, step.output, run.files.results("probes"), model=run.model,
                         span=cfg.eval.probes.span, max_new_tokens=n, meta={"generation": run.generation(n)},
                         desc=f"probes ({run.label})")
        return task_stats({"all": res.get("all"), "n_scored": res["n_scored"], "n_failed": res["n_failed"],
                           "n_rejected": rejects.total}, failed=res["n_failed"])

    return run_step(retrieval_step(run, "probes", items_path, n, span=cfg.eval.probes.span), work)


def needle_task(run: ModelRun) -> dict[str, Any]:
    """The needle grid on one model: key-word recall per item and, with `eval.needle.judge`, LongAlign's
    1-10 judge rating beside it (a case the judge left pending or failed leaves the task incomplete)."""
    cfg = run.cfg
    items_path = ensure_needles(cfg)
    n = cfg.eval.generate.new_tokens(cfg.eval.needle.max_new_tokens)
    judge = cfg.eval.judge.rating_settings() if cfg.eval.needle.judge else None

    def work(step: StepRun) -> dict[str, Any]:
        items, rejects = load_items(items_path, check_needle, cfg.eval.limit, step.rejected)
        res = run_needle(run.backend, items, step.output, run.files.results("needle"), model=run.model,
                         max_new_tokens=n, meta={"generation": run.generation(n)}, desc=f"needle ({run.label})")
        stats = {"avg": res["avg"], "mean": res.get("mean"), "n_scored": res["n_scored"], "n_failed": res["n_failed"],
                 "n_rejected": rejects.total}
        if judge is None:
            return task_stats(stats, failed=res["n_failed"])
        res = judge_needles(cfg, items, res, step.output)
        write_json(run.files.results("needle"), res)
        rated = {k: res["judge"][k] for k in ("n_rated", "n_failed", "n_pending")}
        return task_stats({**stats, "judge": rated}, failed=res["n_failed"] + rated["n_failed"],
                          pending=rated["n_pending"])

    return run_step(retrieval_step(run, "needle", items_path, n, judge=judge), work)
