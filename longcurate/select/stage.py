"""The select stage over files: score HMG and CAM, rank, write budgets, print diagnostics.

Each step skips itself when its output is complete (a `.done` marker beside it) and was made with the
same settings from the same inputs (the marker records them; rank and budgets also record digests of
the files they read), so a re-run of the pipeline redoes nothing and leaves the same bytes, and a run
with, say, another `alpha` redoes rank and budgets only. Scores made under other scoring settings are
refused, not mixed (see `scoring.guard_settings`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from longcurate.core.config import to_dict
from longcurate.core.jsonl import file_digest, is_done_with, mark_done, write_json, write_jsonl
from longcurate.select.scoring import run_scores, scores_dir
from longcurate.select.shard import read_scores

log = logging.getLogger("longcurate.select")


def ranked_path(cfg) -> Path:
    return Path(cfg.select.output) if cfg.select.output else scores_dir(cfg) / "ranked.jsonl"


def budget_dir(cfg) -> Path:
    return cfg.path(cfg.select.budget_dir, "budgets")


def run_rank(cfg, hmg_path: Path | None = None, cam_path: Path | None = None,
             output: Path | None = None) -> dict[str, Any]:
    from longcurate.select.rank import format_stats, rank_scores

    sel = cfg.select
    hmg_path = hmg_path or scores_dir(cfg) / "hmg.jsonl"
    cam_path = cam_path if cam_path is not None else scores_dir(cfg) / "cam.jsonl"
    output = output or ranked_path(cfg)
    has_cam = bool(cam_path) and Path(cam_path).exists()
    params = {"alpha": sel.alpha, "normalize": sel.normalize, "hmg": file_digest(hmg_path),
              "cam": file_digest(cam_path) if has_cam else None}
    if is_done_with(output, params):
        log.info("rank: %s is complete; nothing to do", output)
        return {"skipped": True}
    hmg = read_scores(hmg_path)
    cam = read_scores(cam_path) if has_cam else None
    ranked, stats = rank_scores(hmg, cam, alpha=sel.alpha, normalize=sel.normalize)
    write_jsonl(output, ranked)
    mark_done(output, stats, params)
    print(format_stats(stats))
    return stats


def _load_sample_map(cfg):
    from longcurate.select.inputs import load_samples

    inp = cfg.path(cfg.select.input, "samples.jsonl")
    samples = load_samples(inp, _Silent(), limit=None)  # parse errors were reported when scoring
    return {s.id: s for _, s in samples}


class _Silent:
    def add(self, *a: Any, **kw: Any) -> None:
        pass


def run_budget(cfg, budgets: list[float] | None = None, ranked: Path | None = None,
               out_dir: Path | None = None, samples: dict | None = None) -> dict[str, Any]:
    from longcurate.select.budget import write_budgets

    sel = cfg.select
    ranked = ranked or ranked_path(cfg)
    out_dir = out_dir or budget_dir(cfg)
    budgets = list(budgets or sel.budgets)
    marker = out_dir / "budgets.jsonl"
    hmg_path = scores_dir(cfg) / "hmg.jsonl"
    methods = ["gateau", *sel.baselines]
    params = {"budgets": budgets, "methods": methods, "seed": cfg.seed,
              "overflow": sel.budget_overflow, "ranked": file_digest(ranked), "hmg": file_digest(hmg_path),
              "input": str(cfg.path(sel.input, "samples.jsonl"))}
    if is_done_with(marker, params):
        log.info("budget: %s is complete; nothing to do", out_dir)
        return {"skipped": True}
    recs = read_scores(ranked)
    lengths = {str(r["id"]): int(r["n_tokens"]) for r in read_scores(hmg_path)} if hmg_path.exists() else None
    written = write_budgets(recs, samples if samples is not None else _load_sample_map(cfg), out_dir, budgets, methods,
                            lengths=lengths, seed=cfg.seed, overflow=sel.budget_overflow)
    previous = {str(r["file"]) for r in read_scores(marker)} if marker.exists() else set()
    for name in sorted(previous - set(written)):  # files of budgets no longer asked for
        (out_dir / name).unlink(missing_ok=True)
    write_jsonl(marker, [{"file": k, "samples": v} for k, v in written.items()])
    mark_done(marker, {"files": len(written)}, params)
    for name, n in written.items():
        print(f"{out_dir / name}: {n} samples")
    return {"files": written}


def run_diagnose(cfg, hmg_path: Path | None = None, cam_path: Path | None = None,
                 samples: dict | None = None) -> dict[str, Any]:
    from longcurate.select.diagnose import diagnose, format_report

    hmg_path = hmg_path or scores_dir(cfg) / "hmg.jsonl"
    cam_path = cam_path or scores_dir(cfg) / "cam.jsonl"
    samples = samples if samples is not None else _load_sample_map(cfg)
    kinds = {i: s.kind for i, s in samples.items()}
    d = diagnose(kinds, read_scores(hmg_path), read_scores(cam_path) if cam_path.exists() else None)
    write_json(scores_dir(cfg) / "diagnostics.json", d)
    print(format_report(d))
    return d


def run_stage(cfg) -> dict[str, Any]:
    """Score (HMG and CAM in one pass over θ_B), rank, budgets, diagnostics; each step resumes or skips."""
    from longcurate.core.runinfo import write_manifest

    import dataclasses

    # `select.output` names one command's output; the stage uses the fixed names under scores_dir.
    cfg = dataclasses.replace(cfg, select=dataclasses.replace(cfg.select, output=None))
    sel = cfg.select
    # HMG and CAM together: one θ_B forward per sample gives HMG's NLL and CAM's attention.
    stats: dict[str, Any] = dict(run_scores(cfg, ["hmg", "cam"] if sel.cam else ["hmg"]))
    cam_path = scores_dir(cfg) / "cam.jsonl" if sel.cam else Path("/nonexistent")
    stats["rank"] = run_rank(cfg, cam_path=cam_path)
    samples = _load_sample_map(cfg)  # parsed once for budgets and diagnostics
    stats["budget"] = run_budget(cfg, samples=samples)
    has_gold = any(s.gold for s in samples.values())
    if sel.diagnose and has_gold:
        stats["diagnose"] = run_diagnose(cfg, cam_path=cam_path, samples=samples)
    write_manifest(scores_dir(cfg) / "select.manifest.json", "select", to_dict(cfg), stats)
    return stats


__all__ = ["run_stage", "run_rank", "run_budget", "run_diagnose"]
