"""The eval stage: build probes and needles once, evaluate every configured model, write the report.

Paths come from the run's layout (`cfg.layout()`): under `eval_dir` (default `<output_dir>/eval`)

    probes.jsonl (+ .done)         the probe items, shared by every model
    needle.jsonl (+ .done)         the needle items
    <label>/probes/{predictions.jsonl,results.json}
    <label>/needle/{predictions.jsonl,results.json}
    <label>/longbench/...          when "longbench" is in eval.run and eval.longbench.data_dir is set
    report.md, plots/*.png
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
from typing import TYPE_CHECKING, Any, Callable

from longcurate.core.completion import Step
from longcurate.core.config import to_dict
from longcurate.core.errors import UserError
from longcurate.core.jsonl import Rejects, rejected_path, write_jsonl
from longcurate.core.layout import model_label
from longcurate.core.runinfo import write_manifest
from longcurate.eval.generate import Generator, make_generator
from longcurate.eval.predict import LazyGenerator

if TYPE_CHECKING:
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.eval")

ITEM_FORMAT = 2  # the item files' format version: 2 = sentences from core.text's splitter, articles from core.wiki
RUN_KINDS = ("probes", "needle", "longbench")


def probes_step(cfg: RunConfig) -> Step:
    """probes.jsonl, policy `redo`: items are cheap to rebuild and every prediction made from an old
    item is recognised by its request hash and redone, so other settings simply rebuild the file."""
    p = cfg.eval.probes
    settings = {"tasks": list(p.tasks), "context_tokens": p.context_tokens, "num_positions": p.num_positions,
                "num_sets": p.num_sets, "seed": cfg.seed, "corpus": cfg.eval.corpus, "tokenizer": cfg.model,
                "format": ITEM_FORMAT}
    return Step(cfg.layout().probes, settings, on_change="redo", name="the probe items")


def needle_step(cfg: RunConfig) -> Step:
    """needle.jsonl, policy `redo` (as probes_step, for the same reason)."""
    n = cfg.eval.needle
    settings = {"lengths": list(n.lengths), "depths": list(n.depths), "needle": n.needle, "question": n.question,
                "key_words": list(n.key_words), "seed": cfg.seed, "corpus": cfg.eval.corpus, "tokenizer": cfg.model,
                "format": ITEM_FORMAT}
    return Step(cfg.layout().needle, settings, on_change="redo", name="the needle items")


def ensure_probes(cfg: RunConfig, tokenizer_loader: Callable[[], Any] | None = None) -> Path:
    """Build `probes.jsonl` unless it is complete with the same settings; returns its path."""
    from longcurate.eval import probes

    step = probes_step(cfg)
    if step.is_complete():
        return step.output
    p = cfg.eval.probes
    tok = (tokenizer_loader or (lambda: item_tokenizer(cfg)))()
    rejected_path(step.output).unlink(missing_ok=True)  # a rebuild's skips replace the last build's
    with Rejects(rejected_path(step.output)) as rejects:
        items, stats = probes.build_probes(
            tok, tasks=p.tasks, context_tokens=p.context_tokens, num_positions=p.num_positions,
            num_sets=p.num_sets, seed=cfg.seed, corpus=cfg.eval.corpus,
            on_skip=lambda pid, reason: rejects.add(reason, file=str(step.output), record_id=pid))
    _write_items(step, items, {"items": stats.items, "skipped_ambiguous": stats.skipped_ambiguous,
                               "context_tokens": stats.context_tokens})
    log.info("probes: %d items -> %s (skipped as ambiguous: %s)", stats.items, step.output,
             stats.skipped_ambiguous or 0)
    return step.output


def ensure_needles(cfg: RunConfig, tokenizer_loader: Callable[[], Any] | None = None) -> Path:
    """Build `needle.jsonl` unless it is complete with the same settings; returns its path."""
    from longcurate.eval.needle import build_needles

    step = needle_step(cfg)
    if step.is_complete():
        return step.output
    n = cfg.eval.needle
    tok = (tokenizer_loader or (lambda: item_tokenizer(cfg)))()
    items = build_needles(tok, lengths=n.lengths, depths=n.depths, needle=n.needle, question=n.question,
                          key_words=n.key_words, seed=cfg.seed, corpus=cfg.eval.corpus)
    _write_items(step, items, {"items": len(items)})
    log.info("needle: %d items -> %s", len(items), step.output)
    return step.output


def _write_items(step: Step, items: list[Any], stats: dict[str, Any]) -> None:
    """Replace the item file (atomically) and mark it complete with its stats and settings."""
    step.unfinish()
    write_jsonl(step.output, (it.to_dict() for it in items))
    step.finish(stats)


def item_tokenizer(cfg: RunConfig) -> Any:
    """The tokenizer that measures the item files' lengths: the run's model's."""
    from longcurate.core.models import load_tokenizer

    return load_tokenizer(cfg.model, allow_download=cfg.allow_download, trust_remote_code=cfg.trust_remote_code)


def build_items(cfg: RunConfig, kinds: list[str] | tuple[str, ...]) -> dict[str, Path]:
    """The item files of `kinds` (probes, needle; others are ignored), built when missing or made with
    other settings; the tokenizer is loaded once, and only when a file is built."""
    tokenizer = functools.cache(lambda: item_tokenizer(cfg))
    out = {}
    if "probes" in kinds:
        out["probes"] = ensure_probes(cfg, tokenizer)
    if "needle" in kinds:
        out["needle"] = ensure_needles(cfg, tokenizer)
    return out


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


def evaluate_model(cfg: RunConfig, label: str, model: str, generator: Generator | None = None,
                   what: list[str] | None = None) -> dict[str, Any]:
    """Run probes / needle (/ longbench) for one model into `<eval_dir>/<label>/`."""
    from longcurate.eval.probes import Probe
    from longcurate.eval.runner import check_needle, load_items, run_needle, run_probes

    what = list(what or cfg.eval.run)
    gen = generator if generator is not None else LazyGenerator(lambda: make_generator(cfg, model))
    out = cfg.layout().eval_model(label)
    g = cfg.eval.generate
    stats: dict[str, Any] = {"model": model}
    meta = {"generation": {"backend": g.backend, "template": g.template, "max_new_tokens": g.max_new_tokens,
                           "decoding": "greedy"}}
    if "probes" in what:
        items, rej = load_items(ensure_probes(cfg), Probe.from_dict, cfg.eval.limit, out / "probes" / "items.rejected.jsonl")
        res = run_probes(gen, items, out / "probes", model=model, span=cfg.eval.probes.span,
                         max_new_tokens=g.max_new_tokens, meta=meta)
        stats["probes"] = {"all": res.get("all"), "n_scored": res["n_scored"], "n_failed": res["n_failed"],
                           "n_rejected": rej.total}
    if "needle" in what:
        items, rej = load_items(ensure_needles(cfg), check_needle, cfg.eval.limit, out / "needle" / "items.rejected.jsonl")
        res = run_needle(gen, items, out / "needle", model=model, max_new_tokens=g.max_new_tokens, meta=meta)
        stats["needle"] = {"avg": res["avg"], "n_scored": res["n_scored"], "n_failed": res["n_failed"],
                           "n_rejected": rej.total}
    if "longbench" in what:
        if cfg.eval.longbench.data_dir is None and not cfg.allow_download:
            log.warning("eval: longbench asked for but eval.longbench.data_dir is not set (offline); skipped")
        else:
            from longcurate.eval.longbench import run_longbench

            res = run_longbench(cfg, model=model, generator=gen, output_dir=out / "longbench")
            stats["longbench"] = {"average": res.get("average"), "failures": res.get("num_failures")}
    return stats


def write_comparison(cfg: RunConfig, labels: list[str]) -> Path | None:
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
    return write_report(results, layout.eval_dir)


def run_stage(cfg: RunConfig) -> dict[str, Any]:
    """The whole stage: item files, every model of eval.models, the report, the stage's manifest."""
    unknown = [w for w in cfg.eval.run if w not in RUN_KINDS]
    if unknown:
        raise UserError(f"eval.run: unknown entries {unknown}; use {', '.join(RUN_KINDS)}")
    models = resolve_models(cfg)
    if not models:
        raise UserError("eval: no model to evaluate (eval.models is empty or the checkpoint is missing)")
    build_items(cfg, cfg.eval.run)
    stats: dict[str, Any] = {"models": {}}
    for label, model in models:
        log.info("eval: %s (%s)", label, model)
        stats["models"][label] = evaluate_model(cfg, label, model)
    report = write_comparison(cfg, [lab for lab, _ in models])
    stats["report"] = str(report) if report else None
    if report:
        log.info("eval report: %s", report)
    write_manifest(cfg.layout().manifest("eval"), "eval", to_dict(cfg), stats)
    return stats
