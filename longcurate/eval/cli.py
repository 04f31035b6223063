"""The `eval` noun and its verbs.

    longcurate eval build --length 2048 --positions 8 --sets 2     # probes.jsonl and needle.jsonl
    longcurate eval build --only probes --output runs/x/eval/probes.jsonl
    longcurate eval probes --model smollm2-135m-instruct --output-dir runs/x/eval
    longcurate eval needle --model runs/demo/checkpoint eval.needle.lengths=[1024,4096]
    longcurate eval longbench --data-dir data/longbench --tasks hotpotqa,trec --limit 20
    longcurate eval longbench --data-dir data/longbench --longbench-e      # LongBench-E buckets
    longcurate eval longbench --score-only runs/x/eval/longbench/pred      # -> pred/result.json
    longcurate eval report runs/demo/eval/checkpoint runs/demo/eval/base --output-dir runs/demo/eval
    longcurate eval run --config configs/demo.yaml      # the stage: probes + needle on every model + report
    longcurate check contamination --train runs/demo/mixture/mixture.jsonl \
        --eval runs/demo/eval/probes.jsonl runs/demo/eval/needle.jsonl --output contamination.json

Every verb but `report` also takes `--config FILE.yaml` and `key=value` overrides. Results go to
`<eval.output_dir>/<label>/{probes,needle}/` (label: `--label`, else from the model name). LongBench
failures (bad lines, generation errors, missing predictions) are excluded from the task means,
counted, listed in result.json and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from longcurate.config import resolve_config
from longcurate.core.cli import add_config_args, add_flag, add_switch, comma_floats, comma_ints, comma_words
from longcurate.core.errors import UserError
from longcurate.core.jsonl import read_json_if_valid
from longcurate.core.layout import model_label

ONLY = ("probes", "needle")


def _cmd_build(args: argparse.Namespace) -> int:
    from longcurate.eval.items import build_items, needle_step, probes_step

    cfg = resolve_config(args)
    built = build_items(cfg, [args.only] if args.only else ONLY)
    if "probes" in built:
        info = probes_step(cfg).stats()
        print(f"probes: {info['items']} items -> {built['probes']}")
        print(f"skipped (ambiguous key): {info['skipped_ambiguous'] or 0}")
        print(f"context tokens per set: {info['context_tokens']}")
    if "needle" in built:
        print(f"needle: {needle_step(cfg).stats()['items']} items -> {built['needle']}")
    return 0


def _run_one(args: argparse.Namespace, what: str) -> int:
    from longcurate.eval.stage import evaluate_model

    cfg = resolve_config(args)
    label = args.label or model_label(cfg.model)
    s = evaluate_model(cfg, label, cfg.model, what=[what])[what]
    if what == "probes":
        a = s["all"] or {}
        print(f"probes on {cfg.model}: all avg {100 * a.get('avg', float('nan')):.1f}, "
              f"gap {100 * a.get('gap', float('nan')):.1f} ({s['n_scored']} scored, {s['n_failed']} failed)")
    else:
        print(f"needle on {cfg.model}: mean recall {100 * s['avg']:.1f} ({s['n_scored']} scored, {s['n_failed']} failed)")
    print(f"results: {cfg.layout().eval_model(label) / what / 'results.json'}")
    return 1 if s["n_failed"] else 0


def _cmd_probes(args: argparse.Namespace) -> int:
    return _run_one(args, "probes")


def _cmd_needle(args: argparse.Namespace) -> int:
    return _run_one(args, "needle")


def _cmd_longbench(args: argparse.Namespace) -> int:
    from longcurate.eval import longbench
    from longcurate.eval.longbench_score import format_result

    cfg = resolve_config(args)
    lb = cfg.eval.longbench
    if args.score_only:
        limit = lb.limit if lb.limit is not None else cfg.eval.limit
        result = longbench.score_only(Path(args.score_only), output_dir=args.output_dir, tasks=list(lb.tasks) or None,
                                      e=lb.e, data_dir=lb.data_dir, limit=limit)
    else:
        result = longbench.run_longbench(cfg)
    print(format_result(result))
    print(f"wrote {result['_path']}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from longcurate.eval.report import load_results, write_report

    labels = comma_words(args.labels) if args.labels else [None] * len(args.folders)
    if len(labels) != len(args.folders):
        raise UserError(f"--labels needs one label per folder: {len(labels)} label(s) for {len(args.folders)} folder(s)")
    results = [load_results(f, lab) for f, lab in zip(args.folders, labels)]
    out = Path(args.output_dir) if args.output_dir else Path(args.folders[0]).parent
    contamination = read_json_if_valid(out / "contamination.json")  # the stage's check, when it ran there
    print(f"report: {write_report(results, out, contamination=contamination)}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from longcurate.eval.stage import run_stage

    print(json.dumps(run_stage(resolve_config(args)), indent=2))
    return 0


def _cmd_contamination(args: argparse.Namespace) -> int:
    from longcurate.eval.contamination import format_table, require_clean, run_check

    result, rejects = run_check(args.train, args.eval, args.output, answer_field=args.answer_field,
                                key_field=args.key_field, progress=True)
    print(format_table(result))
    print(rejects.summary())
    print(f"wrote {args.output}")
    if args.require_clean:
        require_clean(result.to_dict(), "check contamination")
    return 0


class _RenamedSwitch(argparse.Action):
    """An old spelling of a switch: sets it, and says the new name on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kw: Any):
        super().__init__(option_strings, dest, nargs=0, default=None, **kw)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"{option_string} is now {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, True)


def _model_flags(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    add_flag(p, "--model", "model", "model to evaluate (HF id, folder, alias)")
    add_flag(p, "--output-dir", "eval.output_dir", "results folder (results go to <dir>/<label>/...)")
    add_flag(p, "--backend", "eval.generate.backend", "generation backend: hf | openai | vllm")
    add_flag(p, "--template", "eval.generate.template", "prompt template: chat | film | raw")
    add_flag(p, "--max-new-tokens", "eval.generate.max_new_tokens", "greedy generation length", type=int)
    add_flag(p, "--limit", "eval.limit", "at most this many items", type=int)
    p.add_argument("--label", default=None, help="name of the results folder (default: from the model name)")


def _add_build(verbs: Any) -> None:
    b = verbs.add_parser("build", help="build the item files: probes (document / code / database) and needles",
                         description="Contexts of N tokens, keys at evenly spread positions; needle haystacks.")
    add_config_args(b)
    b.add_argument("--only", choices=ONLY, default=None, help="build only this item file")
    add_flag(b, "--length", "eval.probes.context_tokens", "probe context length in tokens", type=int)
    add_flag(b, "--positions", "eval.probes.num_positions", "key positions per context (position_id)", type=int)
    add_flag(b, "--sets", "eval.probes.num_sets", "contexts per task (set_id)", type=int)
    add_flag(b, "--tasks", "eval.probes.tasks", "comma-separated: document,code,database", type=comma_words)
    add_flag(b, "--seed", "seed", "random seed", type=int)
    add_flag(b, "--model", "model", "whose tokenizer measures the length")
    add_flag(b, "--output", "eval.probes.output", "probe JSONL (default <output_dir>/eval/probes.jsonl)")
    b.set_defaults(func=_cmd_build)


def _add_longbench(verbs: Any) -> None:
    p = verbs.add_parser("longbench", help="LongBench / LongBench-E: predict and score, or --score-only PRED_DIR",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    add_flag(p, "--data-dir", "eval.longbench.data_dir", "folder of LongBench-format <task>.jsonl files")
    add_flag(p, "--tasks", "eval.longbench.tasks", "comma-separated task names (default: all found)", type=comma_words)
    add_flag(p, "--model", "model", "model to evaluate (HF id, folder, alias)")
    add_flag(p, "--output-dir", "eval.longbench.output_dir",
             "where pred/ and result.json go; with --score-only, where result.json goes (default: PRED_DIR)")
    add_flag(p, "--limit", "eval.longbench.limit", "at most this many items per task", type=int)
    add_flag(p, "--backend", "eval.generate.backend", "generation backend: hf | openai | vllm")
    add_switch(p, "--longbench-e", "eval.longbench.e", "LongBench-E: read <task>_e.jsonl, score by length bucket")
    p.add_argument("--e", dest="longbench_e", action=_RenamedSwitch, new="--longbench-e", help=argparse.SUPPRESS)
    p.add_argument("--score-only", metavar="PRED_DIR", default=None,
                   help="score the <task>.jsonl prediction files in PRED_DIR instead of generating")
    p.set_defaults(func=_cmd_longbench)


def register(sub: Any) -> None:
    ev = sub.add_parser("eval", help="evaluate: build, probes, needle, longbench, report, run (the whole stage)",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = ev.add_subparsers(dest="eval_command", metavar="VERB", required=True)
    _add_build(verbs)

    p = verbs.add_parser("probes", help="run and score the VaL-style probes on one model")
    _model_flags(p)
    add_flag(p, "--probes", "eval.probes.output", "probe JSONL (built with the config when missing)")
    add_flag(p, "--span", "eval.probes.span", "positions per aggregation span", type=int)
    p.set_defaults(func=_cmd_probes)

    n = verbs.add_parser("needle", help="needle in a haystack over a depth x length grid on one model")
    _model_flags(n)
    add_flag(n, "--lengths", "eval.needle.lengths", "comma-separated haystack lengths in tokens", type=comma_ints)
    add_flag(n, "--depths", "eval.needle.depths", "comma-separated depths in percent", type=comma_floats)
    n.set_defaults(func=_cmd_needle)

    _add_longbench(verbs)

    r = verbs.add_parser("report", help="Markdown report + PNG plots comparing result folders")
    r.add_argument("folders", nargs="+", metavar="RESULT_DIR", help="a model's folder (holding probes/ needle/)")
    r.add_argument("--labels", default=None, help="comma-separated model names (default: folder names)")
    r.add_argument("--output-dir", default=None, help="where report.md and plots/ go (default: the first folder's parent)")
    r.set_defaults(func=_cmd_report)

    s = verbs.add_parser("run", help="the eval stage: every model of eval.models, then the report")
    add_config_args(s)
    s.set_defaults(func=_cmd_run)
    _register_check(sub)


def _register_check(sub: Any) -> None:
    ck = sub.add_parser("check", help="check: contamination (eval answers in the training data)")
    verbs = ck.add_subparsers(dest="check_command", metavar="VERB", required=True)
    c = verbs.add_parser(
        "contamination", help="do eval answers, keys or needles occur in the training data?",
        description="For every eval item (probe: answer and key; needle: the needle; LongBench: each answer; "
                    "held-out sample: the response; or the named fields of any JSONL), whether its texts occur "
                    "in the training data (case- and whitespace-normalised, whole words) and its share of "
                    "13-grams found there. Training files (samples, mixtures, ShareGPT) are streamed.")
    c.add_argument("--train", nargs="+", required=True, metavar="FILE", help="training JSONL files")
    c.add_argument("--eval", nargs="+", required=True, metavar="FILE", help="eval item JSONL files")
    c.add_argument("--answer-field", default=None, help="check this field of every eval line (string or list)")
    c.add_argument("--key-field", default=None, help="and this one")
    c.add_argument("--output", default="contamination.json", help="per-item JSON (default: contamination.json)")
    c.add_argument("--require-clean", action="store_true", help="exit 2 naming the items when any occurs exactly")
    c.set_defaults(func=_cmd_contamination)


__all__ = ["register"]
