"""`longcurate ablate`: one pool, every arm x seed trained and evaluated on the same items, one report.

Steps, each resumable:
    pool      the config's synth and select stages (`run_stage`; synth also writes the held-out samples)
    arms      arms/<arm>.jsonl                   (arms.arm_step, redo on change)
    items     eval/probes.jsonl, shared by every run  (eval's item step, redo on change)
    runs      runs/<arm>/seed-<s>/, runs/base/   (train and eval stages: a finished model is never retrained)
    report    report.json (+ report.md, plots/)  (report_step, redo on change)
A killed ablation continues where it stopped; a finished one redoes nothing.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from longcurate.ablate.analysis import MeasureStats, measure_stats
from longcurate.ablate.arms import Arm, write_arms
from longcurate.ablate.config import BASELINE
from longcurate.ablate.layout import AblationLayout
from longcurate.ablate.outcomes import outcome_file, read_outcomes
from longcurate.ablate.runs import (Run, check_pool_config, execute, plan_runs, seen_tokens, short_size,
                                    trained_runs)
from longcurate.core.completion import Step
from longcurate.core.config import to_dict
from longcurate.core.errors import UserError
from longcurate.core.jsonl import file_digest, write_json
from longcurate.core.runinfo import write_manifest
from longcurate.core.runner import raise_if_incomplete

if TYPE_CHECKING:
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.ablate")

REPORT_FORMAT = 1  # the report's layout version: a new one rewrites finished reports


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


def arm_info(arms: dict[str, Arm], runs: list[Run], ab: AblationLayout,
             contamination: dict[tuple[str, int | None], Any]) -> dict[str, Any]:
    """Per arm: its file (samples, tokens), what the optimiser saw (per seed and averaged), and how
    many eval items its training mixture contains (eval's contamination check, per seed)."""
    out: dict[str, Any] = {}
    for name, arm in arms.items():
        mine = [r for r in runs if r.arm == name]
        by_seed = {str(r.seed): seen_tokens(r) for r in mine}
        keys = sorted({k for s in by_seed.values() for k in s})
        mean = {k: sum(s.get(k, 0) for s in by_seed.values()) / len(by_seed) for k in keys} if by_seed else {}
        found = {str(r.seed): (contamination.get((name, r.seed)) or {}).get("exact_items") for r in mine}
        out[name] = {"file": str(arm.path.relative_to(ab.root)), "samples": arm.samples, "tokens": arm.tokens,
                     "trained": mean, "trained_by_seed": by_seed, "contaminated_items_by_seed": found}
    return out


def collect(cfg: RunConfig, runs: list[Run]) -> dict[str, MeasureStats]:
    """Each measure's statistics over every run's per-item outcomes."""
    out = {}
    for measure in cfg.ablate.measures:
        models: dict[str, dict[str, Any]] = {}
        for r in runs:
            models.setdefault(r.arm, {})[str(r.seed) if r.seed is not None else "-"] = read_outcomes(r.eval_dir, measure)
        out[measure] = measure_stats(measure, models, baseline=BASELINE, buckets=cfg.ablate.position_buckets)
    return out


def setup_of(cfg: RunConfig, arms: dict[str, Arm]) -> dict[str, Any]:
    from longcurate.select.shard import read_scores

    t = cfg.train
    return {"base_model": t.init_from or cfg.model, "pool_samples": len(read_scores(cfg.layout().ranked)),
            "arms": list(arms), "baseline": BASELINE, "seeds": list(cfg.ablate.seeds), "budget": cfg.ablate.budget,
            "budget_unit": cfg.ablate.budget_unit, "max_steps": t.max_steps,
            "global_batch": t.per_device_batch_size * t.grad_accum, "short_samples": short_size(cfg, arms),
            "measures": list(cfg.ablate.measures), "position_buckets": cfg.ablate.position_buckets}


def report_step(cfg: RunConfig, ab: AblationLayout, arms: dict[str, Arm], runs: list[Run]) -> Step:
    """report.json, policy `redo`: the report is cheap and wholly decided by the per-item files (their
    digests), the arm files and the ablation's settings; report.md and the plots are written with it."""
    files = [{"arm": r.arm, "seed": r.seed,
              **{m: file_digest(outcome_file(r.eval_dir, m)) for m in cfg.ablate.measures}} for r in runs]
    settings = {"format": REPORT_FORMAT, "ablate": to_dict(cfg.ablate) | {"output": None}, "runs": files,
                "arms": {a: file_digest(arm.path) for a, arm in arms.items()}, "setup": setup_of(cfg, arms)}
    return Step(ab.report_json, settings, on_change="redo", name="the ablation report")


def write_report(cfg: RunConfig, ab: AblationLayout, arms: dict[str, Arm], runs: list[Run],
                 contamination: dict[tuple[str, int | None], Any]) -> dict[str, Any]:
    from longcurate.ablate.plots import write_plots
    from longcurate.ablate.report import markdown, report_data
    from longcurate.core.jsonl import atomic_open

    step = report_step(cfg, ab, arms, runs)
    if step.is_complete():
        log.info("ablate: %s is complete; nothing to do", step.output)
        return {"skipped": True}
    step.unfinish()
    data = report_data(step.settings["setup"], arm_info(arms, [r for r in runs if r.seed is not None], ab, contamination),
                       collect(cfg, runs))
    plots = write_plots(data, ab.plots, ab.root)
    with atomic_open(ab.report_md) as f:
        f.write(markdown(data, plots))
    write_json(step.output, data)
    step.finish({"runs": len(runs)})
    return {"report": str(ab.report_md)}


def run_ablation(cfg: RunConfig) -> dict[str, Any]:
    """The whole ablation (see the module docstring); returns its stats, also in ablation.manifest.json."""
    check_pool_config(cfg)
    ab = AblationLayout.of(cfg)
    t0 = time.time()
    stats: dict[str, Any] = {"pool": prepare_pool(cfg)}
    arms = write_arms(cfg, ab, trained_runs(cfg, ab))
    runs = plan_runs(cfg, ab, arms)
    build_shared_items(runs)
    stats["runs"], contamination = {}, {}
    for run in tqdm(runs, desc="ablation runs", unit=" run"):
        t1 = time.time()
        log.info("=== ablate: %s seed %s ===", run.arm, run.seed)
        contamination[(run.arm, run.seed)] = execute(run)["eval"].get("contamination")
        stats["runs"][f"{run.arm}/seed-{run.seed}" if run.seed is not None else run.arm] = round(time.time() - t1, 1)
    stats["report"] = write_report(cfg, ab, arms, runs, contamination)
    stats["seconds"] = round(time.time() - t0, 1)
    write_manifest(ab.manifest, "ablate", to_dict(cfg), stats)
    log.info("ablation report: %s", ab.report_md)
    return stats


__all__ = ["run_ablation", "prepare_pool", "write_report", "report_step", "collect"]
