"""`longcurate ablate`: one pool, every arm (draw) x seed trained and evaluated on the same items, one report.

Steps, each a step of `core.runner` (or a stage made of them), each resumable:
    pool      the config's synth and select stages (`run_stage`; synth also writes the held-out samples)
    arms      arms/<arm>.jsonl, arms/<arm>.subset-<k>.jsonl   (arms.arm_spec: redo on change, refuse once trained)
    items     eval/probes.jsonl, shared by every run  (eval's item step, redo on change)
    runs      runs/<arm>/[subset-<k>/]seed-<s>/, runs/base/   (train and eval stages: a finished model is never retrained)
    report    report.json (+ report.md, plots/)  (report_spec: redo on change)
A killed ablation continues where it stopped; a finished one redoes nothing. Every path comes from
`core.ablation_layout.AblationLayout`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from tqdm.auto import tqdm

from longcurate.ablate.analysis import Design, MeasureStats, measure_stats
from longcurate.ablate.arms import Arm, write_arms
from longcurate.ablate.config import BASELINE, CONTROL
from longcurate.ablate.outcomes import BETTER, Outcome, outcome_file, read_outcomes
from longcurate.ablate.runs import BASE_LABEL, Run, check_pool_config, execute, plan_runs, seen_tokens, short_size, trained_runs
from longcurate.core.config import to_dict
from longcurate.core.errors import UserError
from longcurate.core.jsonl import DiscardRejects, file_digest, write_json
from longcurate.core.ablation_layout import AblationLayout
from longcurate.core.runinfo import write_manifest
from longcurate.core.runner import StepRun, StepSpec, raise_if_incomplete, run_step

if TYPE_CHECKING:
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.ablate")

REPORT_FORMAT = 2  # the report's layout version: a new one rewrites finished reports


def prepare_pool(cfg: RunConfig) -> dict[str, Any]:
    """The config's synth and select stages (each skips what is complete); the ranked pool must exist."""
    from longcurate.select.stage import run_stage as select_stage
    from longcurate.synth.stage import run_stage as synth_stage

    stats: dict[str, Any] = {}
    for name, stage in (("synth", synth_stage), ("select", select_stage)):
        if name in cfg.stages:
            t0 = time.time()
            raise_if_incomplete(stage(cfg), name)  # the arms need the whole pool
            stats[name] = {"seconds": round(time.time() - t0, 1)}
    if not cfg.layout().ranked.exists():
        raise UserError(f"ablate: no ranked pool at {cfg.layout().ranked} (keep select in `stages`)")
    if "nll" in cfg.ablate.measures and not cfg.layout().heldout.exists():
        log.warning("ablate: no held-out samples at %s (synth.heldout_samples = 0): the answer NLL covers the "
                    "probes only", cfg.layout().heldout)
    return stats


def build_shared_items(runs: list[Run]) -> None:
    """The probe items every run's eval reads, built once (the item step of eval: equal settings in
    every run, so no run rebuilds them)."""
    from longcurate.eval.items import build_items

    build_items(runs[0].eval_cfg, ["probes"])  # both measures (nll, probes) read the probe items


def mean_of(dicts: list[dict[str, Any]]) -> dict[str, float]:
    keys = sorted({k for d in dicts for k in d})
    return {k: sum(d.get(k, 0) for d in dicts) / len(dicts) for k in keys} if dicts else {}


def arm_info(arms: list[Arm], runs: list[Run], ab: AblationLayout,
             contamination: dict[str, Any]) -> dict[str, Any]:
    """Per arm: its files (one per draw: samples, tokens, response tokens), their mean, what the
    optimiser saw (per model and averaged; context = all long tokens − response tokens), and how many
    eval items each model's training mixture contains (eval's contamination check)."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(a.name for a in arms):
        mine = [a for a in arms if a.name == name]
        files = [{"file": str(a.path.relative_to(ab.root)), "subset": a.subset, "samples": a.samples,
                  "tokens": a.tokens, "response_tokens": a.response_tokens} for a in mine]
        models = [r for r in runs if r.arm == name and r.seed is not None]
        by_model = {r.key: seen_tokens(r) for r in models}
        seen = mean_of(list(by_model.values()))
        if "long_tokens" in seen:
            seen["long_context_tokens"] = seen["long_tokens"] - seen.get("long_response_tokens", 0)
        out[name] = {"files": files, **{k: sum(f[k] for f in files) / len(files) for k in
                                        ("samples", "tokens", "response_tokens")},
                     "trained": seen, "trained_by_model": by_model,
                     "contaminated_items_by_model": {r.key: (contamination.get(r.key) or {}).get("exact_items")
                                                     for r in models}}
    return out


def question_types(cfg: RunConfig) -> Callable[[Outcome], str]:
    """An item's question type: a probe's task; a held-out sample's question generator (from the
    pool's held-out file), else its kind."""
    from longcurate.core.reader import read_parsed
    from longcurate.core.records import Sample

    path = cfg.layout().heldout
    generator = {s.id: str(s.source.get("generator") or s.kind)
                 for _, s in read_parsed(path, Sample.from_dict, DiscardRejects())} if path.exists() else {}

    def qtype(o: Outcome) -> str:
        key = o.key.split(":", 1)[1]
        return f"{o.source} {generator.get(key, o.task) if o.source == 'heldout' else o.task}"
    return qtype


def collect(cfg: RunConfig, runs: list[Run]) -> dict[str, MeasureStats]:
    """Each measure's statistics over every run's per-item outcomes."""
    ab = cfg.ablate
    qtype = question_types(cfg)
    out = {}
    for measure in ab.measures:
        models: dict[str, dict[Any, Any]] = {}
        for r in runs:
            models.setdefault(r.arm, {})[(r.subset, str(r.seed) if r.seed is not None else "-")] = \
                read_outcomes(r.eval_dir, measure)
        design = Design(BASELINE, CONTROL if CONTROL in ab.arms else None, BETTER[measure], ab.criteria.alpha,
                        ab.criteria.power, ab.position_buckets, ab.bootstrap, qtype, (BASE_LABEL,))
        out[measure] = measure_stats(measure, models, design)
    return out


def setup_of(cfg: RunConfig, arms: list[Arm]) -> dict[str, Any]:
    from longcurate.select.pool import pool_size

    t, s = cfg.train, cfg.select
    return {"base_model": t.init_from or cfg.model, "pool_samples": pool_size(cfg),
            "arms": list(dict.fromkeys(a.name for a in arms)), "baseline": BASELINE,
            "control": CONTROL if CONTROL in cfg.ablate.arms else None, "seeds": list(cfg.ablate.seeds),
            "subsets": cfg.ablate.subsets, "budget": cfg.ablate.budget, "budget_unit": cfg.ablate.budget_unit,
            "max_steps": t.max_steps, "epochs": t.epochs, "global_batch": t.per_device_batch_size * t.grad_accum,
            "short_samples": short_size(cfg, arms), "measures": list(cfg.ablate.measures),
            "position_buckets": cfg.ablate.position_buckets, "bootstrap": cfg.ablate.bootstrap,
            "criteria": to_dict(cfg.ablate.criteria),
            "gateau": {"alpha": s.alpha, "normalize": s.normalize, "hmg_scale": s.hmg_scale, "window": s.window,
                       "model_a": s.model_a}}


def report_spec(cfg: RunConfig, ab: AblationLayout, arms: list[Arm], runs: list[Run]) -> StepSpec:
    """report.json, policy `redo`: the report is cheap and wholly decided by the per-item files (their
    digests), the arm files and the ablation's settings; report.md and the plots are written with it."""
    files = [{"run": r.key, **{m: file_digest(outcome_file(r.eval_dir, m)) for m in cfg.ablate.measures}}
             for r in runs]
    settings = {"format": REPORT_FORMAT, "ablate": to_dict(cfg.ablate) | {"output": None}, "runs": files,
                "arms": {a.key: file_digest(a.path) for a in arms}, "heldout": file_digest(cfg.layout().heldout),
                "setup": setup_of(cfg, arms)}
    return StepSpec("the ablation report", ab.report_json, settings, on_change="redo",
                    also_outputs=(ab.report_md,), quarantine=False)


def write_report(cfg: RunConfig, ab: AblationLayout, arms: list[Arm], runs: list[Run],
                 contamination: dict[str, Any]) -> dict[str, Any]:
    from longcurate.ablate.plots import write_plots
    from longcurate.ablate.report import markdown, report_data
    from longcurate.core.jsonl import atomic_open

    spec = report_spec(cfg, ab, arms, runs)

    def write(run: StepRun) -> dict[str, Any]:
        data = report_data(spec.settings["setup"], arm_info(arms, runs, ab, contamination), collect(cfg, runs))
        plots = write_plots(data, ab)
        with atomic_open(ab.report_md) as f:
            f.write(markdown(data, plots))
        write_json(run.output, data)
        return {"runs": len(runs), "report": str(ab.report_md)}

    return run_step(spec, write)


def run_ablation(cfg: RunConfig) -> dict[str, Any]:
    """The whole ablation (see the module docstring); returns its stats, also in ablation.manifest.json."""
    check_pool_config(cfg)
    ab = cfg.layout().ablation(cfg.ablate.output)
    t0 = time.time()
    stats: dict[str, Any] = {"pool": prepare_pool(cfg)}
    arms = write_arms(cfg, ab, trained_runs(cfg, ab))
    runs = plan_runs(cfg, ab, arms)
    build_shared_items(runs)
    stats["runs"], contamination = {}, {}
    for run in tqdm(runs, desc="ablation runs", unit=" run"):
        t1 = time.time()
        log.info("=== ablate: %s ===", run.key)
        contamination[run.key] = execute(run)["eval"].get("contamination")
        stats["runs"][run.key] = round(time.time() - t1, 1)
    stats["report"] = write_report(cfg, ab, arms, runs, contamination)
    stats["seconds"] = round(time.time() - t0, 1)
    write_manifest(ab.manifest, "ablate", cfg, stats)
    log.info("ablation report: %s", ab.report_md)
    return stats


__all__ = ["run_ablation", "prepare_pool", "write_report", "report_spec", "collect", "arm_info"]
