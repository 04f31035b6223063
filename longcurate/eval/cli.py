"""`longcurate probe build` and `longcurate eval probes | needle | report | run | longbench`.

    longcurate probe build --length 2048 --positions 8 --sets 2 --output runs/x/eval/probes.jsonl
    longcurate eval probes --model smollm2-135m-instruct --probes runs/x/eval/probes.jsonl --output-dir runs/x/eval
    longcurate eval needle --model runs/demo/checkpoint eval.needle.lengths=[1024,4096]
    longcurate eval report runs/demo/eval/checkpoint runs/demo/eval/base --output-dir runs/demo/eval
    longcurate eval run --config configs/demo.yaml      # the stage: probes + needle on every model + report

Results go to `<eval.output_dir>/<label>/{probes,needle}/` (label: `--label`, else from the model name).
"""

from __future__ import annotations

import argparse
import json
import logging

from longcurate.core.cli import ConfigError, add_config_args, add_flag, fail, resolve_config

log = logging.getLogger("longcurate.eval")


def _guard(fn):
    """Bad input (ValueError) becomes a one-line error and exit code 2, like config errors."""
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ConfigError:
            raise
        except ValueError as e:
            return fail(str(e))
    return run


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _words(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _cmd_probe_build(args: argparse.Namespace) -> int:
    from longcurate.eval.stage import ensure_probes

    cfg = resolve_config(args)
    path = ensure_probes(cfg)
    from longcurate.core.jsonl import done_marker

    info = json.loads(done_marker(path).read_text())
    print(f"probes: {info['items']} items -> {path}")
    print(f"skipped (ambiguous key): {info['skipped_ambiguous'] or 0}")
    print(f"context tokens per set: {info['context_tokens']}")
    return 0


def _model_flags(p: argparse.ArgumentParser) -> None:
    add_flag(p, "--model", "model", "model to evaluate (HF id, folder, alias)")
    add_flag(p, "--output-dir", "eval.output_dir", "results folder (results go to <dir>/<label>/...)")
    add_flag(p, "--backend", "eval.generate.backend", "generation backend: hf | openai | vllm")
    add_flag(p, "--template", "eval.generate.template", "prompt template: chat | film | raw")
    add_flag(p, "--max-new-tokens", "eval.generate.max_new_tokens", "greedy generation length", type=int)
    add_flag(p, "--limit", "eval.limit", "at most this many items", type=int)
    p.add_argument("--label", default=None, help="name of the results folder (default: from the model name)")


def _run_one(args: argparse.Namespace, what: str) -> int:
    from longcurate.eval.stage import evaluate_model, label_for

    cfg = resolve_config(args)
    label = args.label or label_for(cfg.model)
    stats = evaluate_model(cfg, label, cfg.model, what=[what])
    s = stats[what]
    if what == "probes":
        a = s["all"] or {}
        print(f"probes on {cfg.model}: all avg {100 * a.get('avg', float('nan')):.1f}, "
              f"gap {100 * a.get('gap', float('nan')):.1f} ({s['n_scored']} scored, {s['n_failed']} failed)")
    else:
        print(f"needle on {cfg.model}: mean recall {100 * s['avg']:.1f} ({s['n_scored']} scored, {s['n_failed']} failed)")
    from longcurate.eval.stage import eval_dir

    print(f"results: {eval_dir(cfg) / label / what / 'results.json'}")
    return 1 if s["n_failed"] else 0


def _cmd_probes(args: argparse.Namespace) -> int:
    return _run_one(args, "probes")


def _cmd_needle(args: argparse.Namespace) -> int:
    return _run_one(args, "needle")


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from longcurate.eval.report import load_results, write_report

    labels = args.labels.split(",") if args.labels else [None] * len(args.folders)
    if len(labels) != len(args.folders):
        raise ValueError("--labels needs one label per folder")
    results = [load_results(f, lab) for f, lab in zip(args.folders, labels)]
    out = Path(args.output_dir) if args.output_dir else Path(args.folders[0]).parent
    print(f"report: {write_report(results, out)}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from longcurate.eval.stage import run_stage

    stats = run_stage(resolve_config(args))
    print(json.dumps(stats, indent=2))
    return 0


def register(sub) -> None:
    probe = sub.add_parser("probe", help="VaL-style probe files (document / code / database retrieval)")
    probe_sub = probe.add_subparsers(dest="probe_command", metavar="COMMAND", required=True)
    b = probe_sub.add_parser("build", help="build probes: contexts of N tokens, keys at evenly spread positions",
                             description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(b)
    add_flag(b, "--length", "eval.probes.context_tokens", "context length in tokens", type=int)
    add_flag(b, "--positions", "eval.probes.num_positions", "key positions per context (position_id)", type=int)
    add_flag(b, "--sets", "eval.probes.num_sets", "contexts per task (set_id)", type=int)
    add_flag(b, "--tasks", "eval.probes.tasks", "comma-separated: document,code,database", type=_words)
    add_flag(b, "--seed", "seed", "random seed", type=int)
    add_flag(b, "--model", "model", "whose tokenizer measures the length")
    add_flag(b, "--output", "eval.probes.output", "probe JSONL (default <output_dir>/eval/probes.jsonl)")
    b.set_defaults(func=_guard(_cmd_probe_build))

    ev = sub.add_parser("eval", help="evaluate: probes, needle, longbench, report, run (the whole stage)",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="COMMAND", required=True)

    p = ev_sub.add_parser("probes", help="run and score the VaL-style probes on one model")
    add_config_args(p)
    _model_flags(p)
    add_flag(p, "--probes", "eval.probes.output", "probe JSONL (built with the config when missing)")
    add_flag(p, "--span", "eval.probes.span", "positions per aggregation span", type=int)
    p.set_defaults(func=_guard(_cmd_probes))

    n = ev_sub.add_parser("needle", help="needle in a haystack over a depth x length grid on one model")
    add_config_args(n)
    _model_flags(n)
    add_flag(n, "--lengths", "eval.needle.lengths", "comma-separated haystack lengths in tokens", type=_ints)
    add_flag(n, "--depths", "eval.needle.depths", "comma-separated depths in percent", type=_floats)
    n.set_defaults(func=_guard(_cmd_needle))

    r = ev_sub.add_parser("report", help="Markdown report + PNG plots comparing result folders")
    r.add_argument("folders", nargs="+", metavar="RESULT_DIR", help="a model's folder (holding probes/ needle/)")
    r.add_argument("--labels", default=None, help="comma-separated model names (default: folder names)")
    r.add_argument("--output-dir", default=None, help="where report.md and plots/ go (default: the first folder's parent)")
    r.set_defaults(func=_guard(_cmd_report))

    s = ev_sub.add_parser("run", help="the eval stage: every model of eval.models, then the report")
    add_config_args(s)
    s.set_defaults(func=_guard(_cmd_run))

    try:
        from longcurate.eval import longbench_cli
    except ModuleNotFoundError as e:
        if e.name != "longcurate.eval.longbench_cli":
            raise
    else:
        longbench_cli.register(ev_sub)
