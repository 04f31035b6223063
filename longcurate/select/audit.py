"""`longcurate select audit CONFIG`: do the scores find long-range dependency? Every selection figure on
a planted pool of known composition, before anything is trained.

    longcurate select audit audit-cpu                          # SmolLM2, ~1-2K-token contexts, 2 CPU cores
    longcurate select audit audit-cpu seed=1 output_dir=runs/audit-cpu-seed1   # a second, independent pool
    longcurate select audit my.yaml select.audit.input=data/LongAlign-10k.jsonl  # natural / absent / wrong

Steps (each through `core.runner.run_step`, so a rerun redoes nothing):
    samples  the run's synth stage, when the samples to plant from do not exist yet
    pool     audit/pool.jsonl: base samples x planted types (`audit_pool`; refuse on change: scores depend on it)
    scores   audit/scores/{hmg,cam}.jsonl: select's own scoring of the pool, HMG and CAM in one θ_B pass
    report   audit/report.{json,md}, audit/audit.png, audit/figures.jsonl: every figure derived from those scores
             (`audit_figures`), their statistics (`audit_stats`) and the pass criteria (`audit_report`)
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from longcurate.core.config import to_dict
from longcurate.core.jsonl import Rejects, file_digest, write_json, write_jsonl
from longcurate.core.reader import source_digest
from longcurate.core.records import Sample
from longcurate.core.runinfo import write_manifest
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.select.audit_figures import compute_figures, figure_names, pool_items, segment_rows
from longcurate.select.audit_pool import audit_window, build_pool
from longcurate.select.audit_report import criteria_rows, format_criteria, write_report
from longcurate.select.audit_stats import figure_report
from longcurate.select.engines import max_positions
from longcurate.select.inputs import PromptBuilder, load_samples
from longcurate.select.scoring import make_builder, run_scores
from longcurate.select.shard import read_scores
from longcurate.select.steps import model_b_name

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun

log = logging.getLogger("longcurate.select")

POOL_FORMAT = 2  # how the pool is planted (core.planted): a new one re-plants (and so re-scores)
REPORT_FORMAT = 1  # the report's figures and layout: a new one rewrites the report


def audit_source(cfg: SelectRun) -> Path:
    """The samples planted from: `select.audit.input`, else the run's samples (synth's training part)."""
    return Path(cfg.select.audit.input) if cfg.select.audit.input else cfg.layout().samples


def prompt_builder(cfg: SelectRun) -> PromptBuilder:
    from longcurate.core.models import load_tokenizer

    name = model_b_name(cfg)
    tok = load_tokenizer(name, cfg.allow_download, cfg.trust_remote_code)
    return make_builder(cfg, tok, max_positions(name, cfg.allow_download))


def pool_spec(cfg: SelectRun, source: Path) -> StepSpec:
    sel, audit = cfg.select, cfg.select.audit
    settings = {"input_sha256": source_digest(source), "seed": cfg.seed, "types": audit.types,
                "window": audit_window(cfg), "margin": audit.margin, "stratum_size": audit.stratum_size,
                "base_samples": audit.base_samples, "model_b": model_b_name(cfg), "prompt_format": sel.prompt_format,
                "max_length": sel.max_length, "overlong": sel.overlong, "format": POOL_FORMAT}
    return StepSpec("audit pool", cfg.layout().audit_pool, settings, on_change="refuse")


def scoring_config(cfg: SelectRun) -> SelectRun:
    """The run config that scores the pool with select's scorers into the audit folder: every pool
    record (no limits), importance kept at temperature 1 (every other temperature is derived)."""
    layout = cfg.layout()
    sel = dataclasses.replace(cfg.select, input=str(layout.audit_pool), scores_dir=str(layout.audit_scores),
                              output=None, limit=None, cam_limit=None, cam=True, importance_temperature=1.0)
    return dataclasses.replace(cfg, select=sel)


def report_spec(cfg: SelectRun) -> StepSpec:
    sel = cfg.select
    scores = scoring_config(cfg).layout()
    report = cfg.layout().audit_report
    settings = {"pool": file_digest(cfg.layout().audit_pool), "hmg": file_digest(scores.score("hmg")),
                "cam": file_digest(scores.score("cam")), "alpha": sel.alpha, "normalize": sel.normalize,
                "hmg_scale": sel.hmg_scale, "cas_metric": sel.cas_metric,
                "importance_temperature": sel.importance_temperature, "seed": cfg.seed,
                "audit": {k: v for k, v in to_dict(sel.audit).items() if k not in ("input", "output_dir")},
                "format": REPORT_FORMAT}
    return StepSpec("audit report", report, settings, quarantine=False,
                    also_outputs=(report.with_suffix(".md"), plot_path(report), figures_path(report)))


def plot_path(report: Path) -> Path:
    return report.with_name("audit.png")


def figures_path(report: Path) -> Path:
    """figures.jsonl: every pool record's type, base sample and score under every figure."""
    return report.with_name("figures.jsonl")


def run_audit(cfg: SelectRun, make_samples: Callable[[SelectRun], Any] | None = None) -> dict[str, Any]:
    """The audit's steps (module docstring); `make_samples(cfg)` makes the run's samples when they are
    missing (the root hands in the synth stage). Returns the stats and prints the criteria."""
    source = audit_source(cfg)
    stats: dict[str, Any] = {}
    if not source.exists():
        if make_samples is None or cfg.select.audit.input:
            raise FileNotFoundError(2, "samples to plant from not found", str(source))
        log.info("audit: no samples at %s; running synth first", source)
        stats["synth"] = make_samples(cfg)
    builder = prompt_builder(cfg)

    def plant(run: StepRun) -> dict[str, Any]:
        with Rejects(run.rejected) as rejects:
            out = build_pool(cfg, builder, source, run.output, rejects)
        return {**out, "rejected": rejects.total}

    stats["pool"] = run_step(pool_spec(cfg, source), plant)
    stats["scores"] = run_scores(scoring_config(cfg), ["hmg", "cam"])
    stats["report"] = run_step(report_spec(cfg), lambda run: make_report(cfg, builder, run.output))
    write_manifest(cfg.layout().manifest("audit"), "audit", to_dict(cfg), stats)
    print(format_criteria(stats["report"]["criteria"]))
    print(f"report: {cfg.layout().audit_report.with_suffix('.md')}")
    return stats


def make_report(cfg: SelectRun, builder: PromptBuilder, output: Path) -> dict[str, Any]:
    """Derive every figure from the pool's scores, compute their statistics, write the report."""
    audit = cfg.select.audit
    layout = scoring_config(cfg).layout()
    pool = {s.id: s for _, s in load_samples(cfg.layout().audit_pool, None)}
    hmg = {str(r["id"]): r for r in read_scores(layout.score("hmg")) if "hmg" in r}
    cam = {str(r["id"]): r for r in read_scores(layout.score("cam")) if "cas" in r}
    items, left_out = pool_items(pool, hmg, cam)
    ids = [it.id for it in items]
    figures = compute_figures(cfg, ids, hmg, cam, segment_rows({i: pool[i] for i in ids}, builder))
    types = [t for t in (audit.types or _types_in(pool)) if any(it.type == t for it in items)]
    reference = "far" if "far" in types else "natural"
    per_figure = {name: figure_report(scores, items, reference, types, audit.bootstrap, cfg.seed)
                  for name, scores in figures.items()}
    chosen = figure_names(cfg)
    result = {"types": types, "reference": reference, "k": len(items) // len(types), "records": len(items),
              "base_samples": len(items) // len(types), "left_out_base_samples": left_out,
              "criteria_figures": chosen, "criteria": criteria_rows(per_figure, chosen, audit.criteria, types),
              "figures": per_figure, "pool": _pool_summary(items, hmg), "settings": _settings(cfg)}
    write_report(output, result, plot_path(output))
    write_jsonl(figures_path(output), ({**dataclasses.asdict(it), **{n: float(v[j]) for n, v in figures.items()}}
                                       for j, it in enumerate(items)))
    write_json(output, result)
    return {"criteria": result["criteria"], "records": len(items), "figures": len(figures)}


def _types_in(pool: dict[str, Sample]) -> list[str]:
    """The pool's types in the order it holds them (the planting order: the reference first)."""
    return list(dict.fromkeys(s.planted["type"] for s in pool.values()))


def _pool_summary(items: list, hmg: dict[str, dict]) -> dict[str, Any]:
    """Per type: records, mean answer tokens, mean scored tokens (the row θ_B read: input records need
    not carry a `length`), evidence offsets (what the balance promises)."""
    out: dict[str, Any] = {}
    for t in sorted({it.type for it in items}):
        mine = [it for it in items if it.type == t]
        offsets = [it.evidence_offset for it in mine if it.evidence_offset is not None]
        out[t] = {"records": len(mine),
                  "mean_response_tokens": sum(it.response_tokens for it in mine) / len(mine),
                  "mean_tokens": sum(int(hmg[it.id]["n_tokens"]) for it in mine) / len(mine),
                  "evidence_offset": [min(offsets), max(offsets)] if offsets else None}
    return out


def _settings(cfg: SelectRun) -> dict[str, Any]:
    sel = cfg.select
    return {"seed": cfg.seed, "model_b": model_b_name(cfg), "model_a": sel.model_a, "window": sel.window,
            "rope_scaling": sel.rope_scaling, "audit_window": audit_window(cfg), "prompt_format": sel.prompt_format,
            "max_segments": sel.max_segments, "alpha": sel.alpha, "normalize": sel.normalize,
            "hmg_scale": sel.hmg_scale, "cas_metric": sel.cas_metric,
            "importance_temperature": sel.importance_temperature, "bootstrap": sel.audit.bootstrap,
            "margin": sel.audit.margin, "stratum_size": sel.audit.stratum_size}


__all__ = ["run_audit", "audit_source", "pool_spec", "scoring_config", "report_spec", "make_report"]
