"""The `select` noun and its verbs.

    longcurate select score hmg --input samples.jsonl --output scores/hmg.jsonl --window 1024
    longcurate select score cam --input samples.jsonl --output scores/cam.jsonl select.max_segments=32
    longcurate select rank --hmg scores/hmg.jsonl --cam scores/cam.jsonl --output scores/ranked.jsonl
    longcurate select budget 1000 3000 0.1 --ranked scores/ranked.jsonl --input samples.jsonl --out-dir budgets
    longcurate select diagnose --hmg scores/hmg.jsonl --cam scores/cam.jsonl --input samples.jsonl
    longcurate select merge --kind hmg --input samples.jsonl --output scores/hmg.jsonl --num-shards 8
    longcurate select run --config configs/demo.yaml          # the whole stage: score, rank, budget, diagnose
    longcurate select run --input mine.jsonl --dry-run        # samples, tokens per pass, time estimate; writes nothing
    longcurate select audit audit-cpu                         # every figure on a planted pool of known types

Every verb also takes `--config FILE.yaml` and `key=value` overrides (e.g. `select.alpha=0.7`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from longcurate.core.cli import add_config_args, add_flag, resolve_config


def _input(p: argparse.ArgumentParser, text: str = "samples to score (JSONL, JSON, Parquet, a datasets folder)") -> None:
    add_flag(p, "--input", "select.input", text)


def _shards(p: argparse.ArgumentParser, index: bool = True) -> None:
    add_flag(p, "--num-shards", "select.num_shards", "number of shards (default: WORLD_SIZE or 1)", type=int)
    if index:
        add_flag(p, "--shard-index", "select.shard_index", "this shard (default: RANK or 0)", type=int)


def _scoring(p: argparse.ArgumentParser, kind: str) -> None:
    """The flags `select score <kind>` reads."""
    add_config_args(p)
    _input(p)
    add_flag(p, "--output", "select.output", f"the {kind} score file (default <output_dir>/select/{kind}.jsonl)")
    add_flag(p, "--model", "select.model", "θ_B, the long model (alias, folder, hub id or .gguf)")
    if kind == "hmg":
        add_flag(p, "--window", "select.window", "θ_A sees only this many tokens (0: full input)", type=int)
    add_flag(p, "--batch-tokens", "select.batch_tokens", "padded tokens per batch", type=int)
    add_flag(p, "--prompt-format", "select.prompt_format", "chat | gateau")
    _shards(p)


def _score(kind: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from longcurate.select.scoring import run_score

        stats = run_score(resolve_config(args), kind, show_progress=not args.no_progress)
        print(f"score {kind}: {stats}")
        return 0

    return run


def _rank(args: argparse.Namespace) -> int:
    from longcurate.select.stage import run_rank

    run_rank(resolve_config(args), _p(args.hmg), _p(args.cam))
    return 0


def _budget(args: argparse.Namespace) -> int:
    from longcurate.select.stage import run_budget

    if args.sizes:  # the positional sizes are `select.budgets`, checked with the rest of the config
        args.overrides = [*args.overrides, f"select.budgets=[{','.join(args.sizes)}]"]
    run_budget(resolve_config(args), _p(args.ranked))
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from longcurate.select.stage import run_diagnose

    run_diagnose(resolve_config(args), _p(args.hmg), _p(args.cam))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from longcurate.select.scoring import merge_scores
    from longcurate.select.shard import shard_spec
    from longcurate.select.steps import ScoreSteps

    cfg = resolve_config(args)
    count = shard_spec(cfg.select.num_shards, 0).count  # --num-shards, else WORLD_SIZE, else 1
    # The merged file records the settings the shards scored with (beside the parts), not this command's.
    steps = ScoreSteps.recorded(cfg, args.kind)
    stats = merge_scores(cfg, steps, count, again=True)  # asked for: merges even a complete file again
    print(f"merged {steps.output}: {stats}")
    return 0


def _run(args: argparse.Namespace) -> int:
    cfg = resolve_config(args)
    if args.dry_run:
        from longcurate.select.estimate import dry_run

        dry_run(cfg)
        return 0
    from longcurate.select.stage import run_stage

    run_stage(cfg)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from longcurate.select.audit import run_audit

    cfg = resolve_config(args)
    run_stage = getattr(args, "run_stage", None)  # the root's stage runner: makes the samples when missing
    run_audit(cfg, (lambda c: run_stage(c, "synth")) if run_stage else None)
    return 0


def _p(x: str | None) -> Path | None:
    return Path(x) if x else None


def _score_parsers(verbs: Any) -> None:
    score = verbs.add_parser("score", help="score samples: HMG (two models' perplexity) or CAM (attention vs importance)")
    kinds = score.add_subparsers(dest="score_kind", metavar="KIND", required=True)
    for kind, text in (("hmg", "response perplexity under θ_A (short) and θ_B (long); hmg after merge"),
                       ("cam", "segment importance, segment attention and CAS with θ_B")):
        p = kinds.add_parser(kind, help=text, description=text)
        _scoring(p, kind)
        p.set_defaults(func=_score(kind))
    p = verbs.add_parser("merge", help="check every id is scored exactly once and merge the shards' part files")
    add_config_args(p)
    p.add_argument("--kind", choices=["hmg", "cam"], required=True, help="which score (hmg adds normalisation)")
    _input(p, "the samples the shards scored")
    add_flag(p, "--output", "select.output", "the merged score file (default <output_dir>/select/<kind>.jsonl)")
    _shards(p, index=False)
    p.set_defaults(func=_merge)


def _score_file_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hmg", help="HMG scores (default <output_dir>/select/hmg.jsonl)")
    p.add_argument("--cam", help="CAM scores (default <output_dir>/select/cam.jsonl; skipped when missing)")


def register(sub: Any) -> None:
    """Add the `select` noun and its verbs to the top-level subparsers `sub`."""
    noun = sub.add_parser("select", help="GATEAU selection: score, rank, budget, diagnose, merge, audit, run",
                          description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = noun.add_subparsers(dest="select_cmd", metavar="VERB", required=True)
    _score_parsers(verbs)

    p = verbs.add_parser("rank", help="combine HMG and CAM into one score and rank",
                         description="score = alpha * hmg_term + (1 - alpha) * cas_term; prints Spearman per term")
    add_config_args(p)
    _score_file_args(p)
    add_flag(p, "--output", "select.output", "the ranked file (default <output_dir>/select/ranked.jsonl)")
    add_flag(p, "--alpha", "select.alpha", "weight of the HMG term", type=float)
    add_flag(p, "--normalize", "select.normalize", "rank (percentile ranks: both terms count) | paper (released rank.py: CAS decides)")
    p.set_defaults(func=_rank)

    p = verbs.add_parser("budget", help="top-k files for each budget, plus the baselines",
                         description="Sizes (1000 3000 5000) or fractions (0.1); baselines random, hmg-only, "
                                     "cam-only, length, ifd, perplexity. Positional KEY=VALUE overrides are accepted too.")
    add_config_args(p, positional=False)
    p.add_argument("sizes", nargs="*", metavar="SIZE|KEY=VALUE",
                   help="budgets and config overrides, anywhere on the line, e.g. 1000 0.1 "
                        "select.baselines=[random,length] (default: select.budgets)")
    _input(p, "the scored samples (records are copied from here)")
    p.add_argument("--ranked", help="ranked scores (default <output_dir>/select/ranked.jsonl)")
    add_flag(p, "--out-dir", "select.budget_dir", "where the files go (default <output_dir>/budgets)")
    p.set_defaults(func=_budget)

    p = verbs.add_parser("diagnose", help="do the scores find the gold segments (synth data)? is CAS a length proxy?")
    add_config_args(p)
    _input(p, "the scored samples (their gold spans and kinds)")
    _score_file_args(p)
    add_flag(p, "--output", "select.output", "the diagnostics JSON (default <output_dir>/select/diagnostics.json)")
    p.set_defaults(func=_diagnose)

    p = verbs.add_parser("audit", help="every selection figure on a planted pool of known types (far, local, "
                         "absent, wrong): top-k shares, AUROCs, pass criteria",
                         description="Plant a pool from the run's samples (synth runs first when they are "
                                     "missing), score it once with HMG and CAM, derive every figure (HMG ppl/log, "
                                     "CAS per metric and temperature, the final score under rank and paper, ifd, "
                                     "perplexity, length, random) and write <output_dir>/audit/report.md, "
                                     "report.json and audit.png, the pass criteria (select.audit.criteria) first.")
    p.add_argument("config_file", nargs="?", metavar="CONFIG",
                   help="the config: a YAML file or a bundled name such as audit-cpu (same as --config)")
    add_config_args(p)
    add_flag(p, "--input", "select.audit.input", "samples to plant from (default: the run's samples)")
    add_flag(p, "--base-samples", "select.audit.base_samples", "base samples (each planted once per type)", type=int)
    p.set_defaults(func=_audit)

    p = verbs.add_parser("run", help="the whole stage: score HMG and CAM, rank, budgets, diagnostics",
                         description="Each step resumes or skips itself, so a re-run redoes nothing.")
    add_config_args(p)
    _input(p, "samples to score (default <output_dir>/samples.jsonl)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the sample count, the tokens of every scoring pass and an estimate of the scoring "
                        "time on this device (a few timed forwards of θ_B), then stop: nothing is scored or written "
                        "(default: off)")
    p.set_defaults(func=_run)
