"""`longcurate eval longbench`: predict and score LongBench, or score existing predictions.

    longcurate eval longbench --data-dir data/longbench --tasks hotpotqa,trec --limit 20
    longcurate eval longbench --data-dir data/longbench --e                 # LongBench-E buckets
    longcurate eval longbench --score-only runs/x/eval/longbench/pred       # -> pred/result.json
    longcurate eval longbench --score-only PRED_DIR --data-dir DATA         # also flag missing predictions

Failed items (bad lines, generation errors, missing predictions) are excluded from the task means,
counted, listed in result.json and printed.
"""

from __future__ import annotations

import argparse

from longcurate.core.cli import add_config_args, add_flag, fail, resolve_config
from longcurate.eval.cli import _words


def register(eval_subparsers) -> argparse.ArgumentParser:
    """Add the `longbench` command to `longcurate eval`'s subcommands."""
    p = eval_subparsers.add_parser(
        "longbench", help="LongBench / LongBench-E: predict and score, or --score-only PRED_DIR",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    add_flag(p, "--data-dir", "eval.longbench.data_dir", "folder of LongBench-format <task>.jsonl files")
    add_flag(p, "--tasks", "eval.longbench.tasks", "comma-separated task names (default: all found)", type=_words)
    add_flag(p, "--model", "model", "model to evaluate (HF id, folder, alias)")
    add_flag(p, "--output-dir", "eval.longbench.output_dir",
             "where pred/ and result.json go; with --score-only, where result.json goes (default: PRED_DIR)")
    add_flag(p, "--limit", "eval.longbench.limit", "at most this many items per task", type=int)
    add_flag(p, "--backend", "eval.generate.backend", "generation backend: hf | openai | vllm")
    # A boolean shortcut: add_flag takes a value type, so this one is registered by hand.
    p.add_argument("--e", dest="e", action="store_const", const=True, default=None,
                   help="LongBench-E: read <task>_e.jsonl, score by length bucket [eval.longbench.e]")
    flags = dict(p.get_default("_flag_keys") or {})
    flags["e"] = "eval.longbench.e"
    p.set_defaults(_flag_keys=flags)
    p.add_argument("--score-only", metavar="PRED_DIR", default=None,
                   help="score the <task>.jsonl prediction files in PRED_DIR instead of generating")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from longcurate.eval import longbench

    cfg = resolve_config(args)
    lb = cfg.eval.longbench
    try:
        if args.score_only:
            pred_dir = Path(args.score_only)
            if not pred_dir.is_dir():
                raise FileNotFoundError(f"prediction folder not found: {pred_dir}")
            limit = lb.limit if lb.limit is not None else cfg.eval.limit
            result = longbench.score_only(pred_dir, output_dir=args.output_dir, tasks=list(lb.tasks) or None,
                                          e=lb.e, data_dir=lb.data_dir, limit=limit)
        else:
            result = longbench.run_longbench(cfg)
    except (ValueError, FileNotFoundError) as e:  # bad input that stops the command: say what and where
        return fail(str(e))
    print(longbench.format_result(result))
    print(f"wrote {result['_path']}")
    return 0
