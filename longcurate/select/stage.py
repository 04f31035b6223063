"""The select stage over files: score HMG and CAM, rank, write budgets, print diagnostics.

Each step runs through the step runner (`core.runner`): it is skipped when its output is complete and
was made with the same settings from the same inputs (the steps and their policies are listed in
`steps.py`), so a re-run of the pipeline redoes nothing and leaves the same bytes, and a run with,
say, another `alpha` redoes rank and budgets only. Scores made under other scoring settings are
refused, not mixed.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.core.jsonl import Rejects, file_digest, write_json, write_jsonl
from longcurate.core.reader import source_digest
from longcurate.core.runinfo import write_manifest
from longcurate.core.runner import StepRun, run_step
from longcurate.select.scoring import run_scores
from longcurate.select.shard import iter_scores
from longcurate.select.steps import budget_spec, cam_scores, command_output, input_path, rank_spec, sample_reading

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun

log = logging.getLogger("longcurate.select")
# What a ranked record holds; 2: it carries `n_tokens`. A ranking of an earlier format is made again.
RANKED_FORMAT = 2


def run_rank(cfg: SelectRun, hmg_path: Path | None = None, cam_path: Path | None = None,
             output: Path | None = None) -> dict[str, Any]:
    """Rank the HMG scores (with CAS when the CAM file exists) into `output` (default: the layout's);
    records with unusable figures go to `<output>.rejected.jsonl` (`rank_input`). Prints both
    correlations on every run, a skipped one too."""
    from longcurate.select.rank import format_stats, rank_scores
    from longcurate.select.rank_input import read_rank_input

    sel = cfg.select
    hmg_path = hmg_path or cfg.layout().score("hmg")
    cam_path = cam_path or cam_scores(cfg)
    has_cam = cam_path is not None and cam_path.exists()
    if not hmg_path.exists():
        raise FileNotFoundError(2, "HMG scores not found (run `longcurate select score hmg`)", str(hmg_path))
    spec = rank_spec(output or command_output(cfg, cfg.layout().ranked),
                     {"alpha": sel.alpha, "normalize": sel.normalize, "hmg": file_digest(hmg_path),
                      "cam": file_digest(cam_path) if has_cam else None, "format": RANKED_FORMAT})

    def rank(run: StepRun) -> dict[str, Any]:
        with Rejects(run.rejected) as rejects:
            found = read_rank_input(hmg_path, cam_path if has_cam else None, rejects)
        ranked, stats = rank_scores(found.hmg, found.cam, alpha=sel.alpha, normalize=sel.normalize)
        stats.update(found.stats())
        if found.quarantined:
            stats["rejected_file"] = str(run.rejected)
        write_jsonl(run.output, ranked)
        return stats

    stats = run_step(spec, rank)
    print(format_stats(stats))
    return stats


RANKED_FIGURES = ("id", "hmg", "cas", "ifd", "perplexity", "n_tokens")  # what the budget orders read


def read_ranked(path: Path) -> list[dict[str, Any]]:
    """The ranked records, in rank order, each reduced to what the budget orders read."""
    return [{k: r[k] for k in RANKED_FIGURES if k in r} for r in iter_scores(path)]


def budget_lengths(cfg: SelectRun, ranked: list[dict[str, Any]], required: bool) -> dict[str, int]:
    """Each ranked sample's token count (`budget.token_counts`): the scoring pass's, carried by the
    ranked records (`n_tokens`), else the HMG file's; a sample without one falls back to the input's
    own `length` field, read in one streaming pass only when some sample needs it."""
    from longcurate.select.budget import token_counts
    from longcurate.select.chosen import sample_lengths

    scored = {str(r["id"]): int(r["n_tokens"]) for r in ranked if "n_tokens" in r}
    hmg_path = cfg.layout().score("hmg")
    if not scored and hmg_path.exists():
        ranked_ids = {str(r["id"]) for r in ranked}  # their n_tokens were checked by rank
        scored = {str(r["id"]): int(r["n_tokens"]) for r in iter_scores(hmg_path)
                  if str(r["id"]) in ranked_ids and "n_tokens" in r}
    own = None
    if required and any(str(r["id"]) not in scored for r in ranked):
        own = sample_lengths(input_path(cfg), cfg.allow_download, sample_reading(cfg))
    return token_counts(ranked, own, scored, required)


def run_budget(cfg: SelectRun, ranked: Path | None = None) -> dict[str, Any]:
    """Write every method's file for every budget (`select.budgets`) into the layout's budgets folder,
    and the index: the orders from the ranking, then one streaming pass over the samples to copy the
    chosen ones."""
    from longcurate.select.budget import plan_budgets, write_budgets
    from longcurate.select.chosen import ChosenRecords

    sel, layout = cfg.select, cfg.layout()
    ranked = ranked or layout.ranked
    budgets = list(sel.budgets)
    methods = ["gateau", *sel.baselines]
    spec = budget_spec(layout.budget_index, {
        "budgets": budgets, "methods": methods, "seed": cfg.seed, "overflow": sel.budget_overflow,
        "ranked": file_digest(ranked), "input_sha256": source_digest(input_path(cfg))})

    def write(run: StepRun) -> dict[str, Any]:
        recs = read_ranked(ranked)
        if not recs:
            raise UserError(f"{ranked}: no ranked samples to write budgets from (see `select rank`)")
        plan = plan_budgets(recs, budgets, methods, lengths=budget_lengths(cfg, recs, "length" in methods),
                            seed=cfg.seed, overflow=sel.budget_overflow)
        wanted = {i for ids in plan.values() for i in ids}
        chosen = ChosenRecords.collect(input_path(cfg), wanted, [str(r["id"]) for r in recs], run.output,
                                       cfg.allow_download, sample_reading(cfg))
        del recs
        try:
            written = write_budgets(plan, chosen, layout.budgets_dir)
        finally:
            chosen.close()
        previous = {str(r["file"]) for r in iter_scores(run.output)} if run.output.exists() else set()
        for name in sorted(previous - set(written)):  # files of budgets no longer asked for
            (layout.budgets_dir / name).unlink(missing_ok=True)
        write_jsonl(run.output, [{"file": k, "samples": v} for k, v in written.items()])
        for name, n in written.items():
            print(f"{layout.budgets_dir / name}: {n} samples")
        return {"files": len(written)}

    return run_step(spec, write)


def run_diagnose(cfg: SelectRun, hmg_path: Path | None = None, cam_path: Path | None = None) -> dict[str, Any]:
    """Do the scores find the gold segments (on data that has them)? Is CAS a length proxy? Written
    to the diagnostics file (`select.output`, else the layout's) and printed. Score records whose
    figures are not finite numbers are left out, as rank leaves them out. Streams: the samples give
    their kinds and gold flags, the score files the few figures diagnostics read."""
    from longcurate.select.chosen import sample_facts
    from longcurate.select.diagnose import diagnose, format_report
    from longcurate.select.rank_input import bad_number

    layout = cfg.layout()
    hmg_path = hmg_path or layout.score("hmg")
    cam_path = cam_path or cam_scores(cfg)
    facts = sample_facts(input_path(cfg), cfg.allow_download, sample_reading(cfg))
    has_cam = cam_path is not None and cam_path.exists()
    hmg = (r for r in iter_scores(hmg_path) if bad_number(r.get("hmg")) is None)
    cam = (r for r in iter_scores(cam_path) if bad_number(r.get("cas")) is None) if has_cam else None
    d = diagnose(facts.kinds, hmg, cam, facts.gold)
    write_json(command_output(cfg, layout.diagnostics), d)
    print(format_report(d))
    return d


def run_stage(cfg: SelectRun) -> dict[str, Any]:
    """Score (HMG and CAM in one pass over θ_B), rank, budgets, diagnostics; each step resumes or
    skips. Writes the stage's manifest."""
    # `select.output` names one command's output; the stage uses the layout's names.
    cfg = dataclasses.replace(cfg, select=dataclasses.replace(cfg.select, output=None))
    sel = cfg.select
    # HMG and CAM together: one θ_B forward per sample gives HMG's NLL and CAM's attention.
    stats: dict[str, Any] = dict(run_scores(cfg, ["hmg", "cam"] if sel.cam else ["hmg"]))
    stats["rank"] = run_rank(cfg)
    stats["budget"] = run_budget(cfg)
    if sel.diagnose:  # gold-based figures on synth data; the CAS sanity figures on any data
        stats["diagnose"] = run_diagnose(cfg)
    write_manifest(cfg.layout().manifest("select"), "select", cfg, stats)
    return stats


__all__ = ["run_stage", "run_rank", "run_budget", "run_diagnose", "read_ranked"]
