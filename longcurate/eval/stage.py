"""The eval stage: build probes and needles once, evaluate every configured model, write the report.

Layout under `eval.output_dir` (default `<output_dir>/eval`):

    probes.jsonl (+ .done)         the probe items, shared by every model
    needle.jsonl (+ .done)         the needle items
    <label>/probes/{predictions.jsonl,results.json}
    <label>/needle/{predictions.jsonl,results.json}
    <label>/longbench/...          when "longbench" is in eval.run and eval.longbench.data_dir is set
    report.md, plots/*.png

Models: `eval.models` entries "checkpoint" (= `eval.checkpoint`, default train's `train.output`, i.e.
`<output_dir>/checkpoint`; skipped with a warning when missing) and "base" (= the run's `model`); other entries are names or paths.
Every step resumes: built item files are reused when their parameters match, predictions already
made are skipped, and a model whose predictions are complete is never even loaded.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any, Callable

from longcurate.core.jsonl import Rejects, is_done_with, mark_done, rejected_path, write_jsonl

log = logging.getLogger("longcurate.eval")


def eval_dir(cfg) -> Path:
    return cfg.path(cfg.eval.output_dir, "eval")


def ensure_probes(cfg, tokenizer_loader: Callable[[], Any] | None = None) -> Path:
    """Build `probes.jsonl` unless it exists with the same parameters; returns its path."""
    from longcurate.eval import probes

    p = cfg.eval.probes
    path = Path(p.output) if p.output else eval_dir(cfg) / "probes.jsonl"
    params = {"tasks": list(p.tasks), "context_tokens": p.context_tokens, "num_positions": p.num_positions,
              "num_sets": p.num_sets, "seed": cfg.seed, "corpus": cfg.eval.corpus, "tokenizer": cfg.model,
              "format": 1}
    if is_done_with(path, params):
        return path
    tok = (tokenizer_loader or (lambda: _tokenizer(cfg)))()
    rejected_path(path).unlink(missing_ok=True)  # a rebuild's skips replace the last build's
    with Rejects(rejected_path(path)) as rejects:
        items, stats = probes.build_probes(
            tok, tasks=p.tasks, context_tokens=p.context_tokens, num_positions=p.num_positions,
            num_sets=p.num_sets, seed=cfg.seed, corpus=cfg.eval.corpus,
            on_skip=lambda pid, reason: rejects.add(reason, file=str(path), record_id=pid))
    write_jsonl(path, (it.to_dict() for it in items))
    mark_done(path, {"items": stats.items, "skipped_ambiguous": stats.skipped_ambiguous,
                     "context_tokens": stats.context_tokens}, params)
    log.info("probes: %d items -> %s (skipped as ambiguous: %s)", stats.items, path, stats.skipped_ambiguous or 0)
    return path


def ensure_needles(cfg, tokenizer_loader: Callable[[], Any] | None = None) -> Path:
    from longcurate.eval.needle import build_needles

    n = cfg.eval.needle
    path = Path(n.output) if n.output else eval_dir(cfg) / "needle.jsonl"
    params = {"lengths": list(n.lengths), "depths": list(n.depths), "needle": n.needle, "question": n.question,
              "key_words": list(n.key_words), "seed": cfg.seed, "corpus": cfg.eval.corpus, "tokenizer": cfg.model,
              "format": 1}
    if is_done_with(path, params):
        return path
    tok = (tokenizer_loader or (lambda: _tokenizer(cfg)))()
    items = build_needles(tok, lengths=n.lengths, depths=n.depths, needle=n.needle, question=n.question,
                          key_words=n.key_words, seed=cfg.seed, corpus=cfg.eval.corpus)
    write_jsonl(path, (it.to_dict() for it in items))
    mark_done(path, {"items": len(items)}, params)
    log.info("needle: %d items -> %s", len(items), path)
    return path


def _tokenizer(cfg):
    from longcurate.core.models import load_tokenizer

    return load_tokenizer(cfg.model, allow_download=cfg.allow_download, trust_remote_code=cfg.trust_remote_code)


def label_for(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name or name).strip("_") or "model"


def resolve_models(cfg) -> list[tuple[str, str]]:
    """(label, model name or path) for each entry of eval.models that exists."""
    out = []
    for entry in cfg.eval.models:
        if entry == "checkpoint":
            # what train writes: train.output, default <output_dir>/checkpoint
            ckpt = cfg.path(cfg.eval.checkpoint or getattr(cfg.train, "output", None), "checkpoint")
            if not (ckpt / "config.json").exists():
                log.warning("eval: no trained checkpoint at %s (no config.json); evaluating without it", ckpt)
                continue
            out.append(("checkpoint", str(ckpt)))
        elif entry == "base":
            out.append(("base", cfg.model))
        else:
            out.append((label_for(entry), entry))
    labels = [lab for lab, _ in out]
    if len(set(labels)) != len(labels):
        raise ValueError(f"eval.models gives duplicate labels {labels}")
    return out


class LazyGenerator:
    """Builds the real generator on first use, so a finished model is never loaded."""

    def __init__(self, factory: Callable[[], Any]):
        self._factory = factory
        self._gen = None

    def get(self):
        if self._gen is None:
            self._gen = self._factory()
        return self._gen

    def generate(self, requests):
        if not requests:
            return []
        return self.get().generate(requests)

    def __getattr__(self, name: str):  # tokenizer, max_context, template ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get(), name)


def evaluate_model(cfg, label: str, model: str, generator=None, what: list[str] | None = None) -> dict[str, Any]:
    """Run probes / needle (/ longbench) for one model into `<eval_dir>/<label>/`."""
    from longcurate.eval.generate import make_generator
    from longcurate.eval.probes import Probe
    from longcurate.eval.runner import check_needle, load_items, run_needle, run_probes

    what = list(what or cfg.eval.run)
    gen = generator if generator is not None else LazyGenerator(lambda: make_generator(cfg, model))
    out = eval_dir(cfg) / label
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


def write_comparison(cfg, labels: list[str]) -> Path | None:
    from longcurate.eval.report import load_results, write_report

    results = []
    for label in labels:
        try:
            results.append(load_results(eval_dir(cfg) / label, label))
        except FileNotFoundError:
            continue
    if not results:
        return None
    return write_report(results, eval_dir(cfg))


def run_stage(cfg) -> dict:
    unknown = [w for w in cfg.eval.run if w not in ("probes", "needle", "longbench")]
    if unknown:
        raise ValueError(f"eval.run: unknown entries {unknown}; use probes, needle, longbench")
    models = resolve_models(cfg)
    if not models:
        raise ValueError("eval: no model to evaluate (eval.models is empty or the checkpoint is missing)")
    tokenizer = functools.cache(lambda: _tokenizer(cfg))  # loaded once, and only if an item file is built
    if "probes" in cfg.eval.run:
        ensure_probes(cfg, tokenizer)
    if "needle" in cfg.eval.run:
        ensure_needles(cfg, tokenizer)
    stats: dict[str, Any] = {"models": {}}
    for label, model in models:
        log.info("eval: %s (%s)", label, model)
        stats["models"][label] = evaluate_model(cfg, label, model)
    report = write_comparison(cfg, [lab for lab, _ in models])
    stats["report"] = str(report) if report else None
    if report:
        log.info("eval report: %s", report)
    return stats
