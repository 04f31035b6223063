"""The eval stage: build probes and needles once, check them against the run's training data, evaluate
every configured model, write the report.

Paths come from the run's layout (`cfg.layout()`): under `eval_dir` (default `<output_dir>/eval`)

    probes.jsonl (+ .done)         the probe items, shared by every model (`items.py`)
    needle.jsonl (+ .done)         the needle items
    contamination.json (+ .done)   which items' answers, keys or needles the training data contains
    <label>/model.json             the model whose results the folder holds (`labels.py`: one model per label)
    <label>/probes/{predictions.jsonl,results.json}
    <label>/needle/{predictions.jsonl,results.json}
    <label>/nll/{items.jsonl,results.json}   when "nll" is in eval.run (`nll.py`)
    <label>/longbench/...          when "longbench" is in eval.run and eval.longbench.data_dir is set
    <label>/longbench-chat/{pred.jsonl,result.json}   when "longbench-chat" is in eval.run (`longbench_chat.py`)
    report.md, plots/*.png         the contamination line first, every figure with its 95% interval
and the stage's manifest at `<output_dir>/eval.manifest.json`.

Models: `eval.models` entries "checkpoint" (= `eval.checkpoint`, default the layout's trained `model`,
`<output_dir>/checkpoint`; skipped with a warning when missing) and "base" (= the run's `model`); other
entries are names or paths. Every step resumes: an item file is reused when its settings match,
predictions already made for the same request are skipped, and a model whose predictions are complete
is never even loaded.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.completion import Step
from longcurate.core.config import to_dict
from longcurate.core.errors import UserError
from longcurate.core.jsonl import read_json_if_valid
from longcurate.core.layout import model_label
from longcurate.core.reader import source_digest
from longcurate.core.runinfo import write_manifest
from longcurate.eval.generate import Generator, make_generator
from longcurate.eval.items import build_items, ensure_needles, ensure_probes
from longcurate.eval.labels import results_folder
from longcurate.eval.predict import LazyGenerator

if TYPE_CHECKING:
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.eval")

RUN_KINDS = ("probes", "needle", "nll", "longbench", "longbench-chat")


def resolve_models(cfg: RunConfig) -> list[tuple[str, str]]:
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


def local_generator(cfg: RunConfig, model: str, gen: Generator) -> Any:
    """A local HF generator for the answer NLL: the generation backend's own when it is `hf` (the model
    is loaded once for both), else one loaded for scoring."""
    if cfg.eval.generate.backend == "hf":
        inner = gen.get() if isinstance(gen, LazyGenerator) else gen
        if hasattr(inner, "model") and hasattr(inner, "tokenizer"):
            return inner
    from longcurate.eval.hf_backend import from_config

    return from_config(cfg, model)


def evaluate_model(cfg: RunConfig, label: str, model: str, generator: Generator | None = None,
                   what: list[str] | None = None) -> dict[str, Any]:
    """Run probes / needle / nll (/ longbench, longbench-chat) for one model into `<eval_dir>/<label>/`."""
    from longcurate.eval.probes import Probe
    from longcurate.eval.runner import check_needle, load_items, run_needle, run_probes

    what = list(what or cfg.eval.run)
    gen = generator if generator is not None else LazyGenerator(lambda: make_generator(cfg, model))
    out = results_folder(cfg, label, model)
    g = cfg.eval.generate
    stats: dict[str, Any] = {"model": model}

    def meta(max_new_tokens: int) -> dict[str, Any]:
        return {"generation": {"backend": g.backend, "template": g.template, "max_new_tokens": max_new_tokens,
                               "decoding": "greedy"}}

    if "probes" in what:
        items, rej = load_items(ensure_probes(cfg), Probe.from_dict, cfg.eval.limit, out / "probes" / "items.rejected.jsonl")
        n = g.new_tokens(cfg.eval.probes.max_new_tokens)
        res = run_probes(gen, items, out / "probes", model=model, span=cfg.eval.probes.span, max_new_tokens=n,
                         meta=meta(n))
        stats["probes"] = {"all": res.get("all"), "n_scored": res["n_scored"], "n_failed": res["n_failed"],
                           "n_rejected": rej.total}
    if "needle" in what:
        items, rej = load_items(ensure_needles(cfg), check_needle, cfg.eval.limit, out / "needle" / "items.rejected.jsonl")
        n = g.new_tokens(cfg.eval.needle.max_new_tokens)
        res = run_needle(gen, items, out / "needle", model=model, max_new_tokens=n, meta=meta(n))
        if cfg.eval.needle.judge:  # LongAlign's 1-10 judge rating, beside the key-word recall
            from longcurate.eval.needle import judge_needles

            res = judge_needles(cfg, items, res, out / "needle")
        stats["needle"] = {"avg": res["avg"], "mean": res.get("mean"), "n_scored": res["n_scored"],
                           "n_failed": res["n_failed"], "n_rejected": rej.total}
    if "nll" in what:
        from longcurate.eval.nll import run_nll

        ensure_probes(cfg)
        res = run_nll(cfg, label, model, functools.cache(lambda: local_generator(cfg, model, gen)))
        stats["nll"] = {"all": res.get("all"), "by_source": res.get("by_source"), "n_scored": res.get("n_scored"),
                        "n_failed": res.get("n_failed")}
    if "longbench" in what:
        if cfg.eval.longbench.data_dir is None and not cfg.allow_download:
            log.warning("eval: longbench asked for but eval.longbench.data_dir is not set (offline); skipped")
        else:
            from longcurate.eval.longbench import run_longbench

            res = run_longbench(cfg, label=label, model=model, generator=gen)
            stats["longbench"] = {"average": res.get("average"), "failures": res.get("num_failures")}
    if "longbench-chat" in what:
        from longcurate.eval.longbench_chat import run_longbench_chat

        res = run_longbench_chat(cfg, label=label, model=model, generator=gen)
        stats["longbench-chat"] = {k: res[k] for k in ("score", "n_rated", "n_failed", "n_pending", "n_missing")}
    return stats


def training_data(cfg: RunConfig) -> Path | None:
    """What the run trained on: the mixture, else the samples (None when neither exists yet)."""
    layout = cfg.layout()
    return next((p for p in (layout.mixture, layout.samples) if p.exists()), None)


def contamination_step(cfg: RunConfig, train: Path, evals: list[Path]) -> Step:
    """`<eval_dir>/contamination.json`, policy `redo`: a pass over the training data, redone whenever
    the training data or an item file changes (settings: their paths and digests)."""
    settings = {"train": [[str(train), source_digest(train)]], "eval": [[str(p), source_digest(p)] for p in evals],
                "format": 1}
    return Step(cfg.layout().eval_dir / "contamination.json", settings, on_change="redo", name="the contamination check")


def check_items(cfg: RunConfig, built: dict[str, Path]) -> dict[str, Any] | None:
    """Check the built item files (and the held-out samples) against the run's training data; with
    `eval.require_clean`, any eval text found there stops the stage. None when there is no training data."""
    from longcurate.eval.contamination import require_clean, run_check

    train = training_data(cfg)
    if train is None:
        log.info("eval: no training data in this run (no mixture, no samples): contamination not checked")
        return None
    evals = list(built.values()) + ([cfg.layout().heldout] if cfg.layout().heldout.exists() else [])
    step = contamination_step(cfg, train, evals)
    result = read_json_if_valid(step.output) if step.is_complete() else None
    if result is None:
        step.unfinish()
        run_check([train], evals, step.output, progress=True)
        result = read_json_if_valid(step.output)
        step.finish({"exact_items": result["exact_items"], "items": len(result["items"])})
    log.info("eval contamination: %d of %d items found in %s", result["exact_items"], len(result["items"]), train)
    if cfg.eval.require_clean:
        require_clean(result, f"eval.require_clean ({step.output})")
    return result


def write_comparison(cfg: RunConfig, labels: list[str], contamination: dict[str, Any] | None = None) -> Path | None:
    """The report over every model that has results; None when none has."""
    from longcurate.eval.report import load_results, write_report

    layout = cfg.layout()
    results = []
    for label in labels:
        try:
            results.append(load_results(layout.eval_model(label), label))
        except FileNotFoundError:
            continue
    if not results:
        return None
    return write_report(results, layout.eval_dir, contamination=contamination)


def run_stage(cfg: RunConfig) -> dict[str, Any]:
    """The whole stage: item files, the contamination check, every model of eval.models, the report,
    the stage's manifest."""
    unknown = [w for w in cfg.eval.run if w not in RUN_KINDS]
    if unknown:
        raise UserError(f"eval.run: unknown entries {unknown}; use {', '.join(RUN_KINDS)}")
    models = resolve_models(cfg)
    if not models:
        raise UserError("eval: no model to evaluate (eval.models is empty or the checkpoint is missing)")
    built = build_items(cfg, cfg.eval.run)
    contamination = check_items(cfg, built)
    stats: dict[str, Any] = {"contamination": None if contamination is None else
                             {"exact_items": contamination["exact_items"], "items": len(contamination["items"])},
                             "models": {}}
    for label, model in models:
        log.info("eval: %s (%s)", label, model)
        stats["models"][label] = evaluate_model(cfg, label, model)
    report = write_comparison(cfg, [lab for lab, _ in models], contamination)
    stats["report"] = str(report) if report else None
    if report:
        log.info("eval report: %s", report)
    write_manifest(cfg.layout().manifest("eval"), "eval", to_dict(cfg), stats)
    return stats
