"""The `eval` noun and its verbs.

    longcurate eval build --length 2048 --positions 8 --sets 2     # probes.jsonl and needle.jsonl
    longcurate eval build --only probes --output runs/x/eval/probes.jsonl
    longcurate eval probes --model smollm2-135m-instruct --output-dir runs/x/eval
    longcurate eval needle --model runs/demo/checkpoint eval.needle.lengths=[1024,4096]
    longcurate eval nll --model runs/demo/checkpoint --label trained
    longcurate eval longbench --data-dir data/longbench --tasks hotpotqa,trec --limit 20
    longcurate eval longbench --data-dir data/longbench --longbench-e      # LongBench-E buckets
    longcurate eval longbench --data-dir data/longbench --model runs/demo/checkpoint --max-new-tokens 8
    longcurate eval longbench --score-only pred/my-model --label my-model   # -> <output dir>/my-model/longbench/pred/
    longcurate eval report runs/demo/eval/checkpoint runs/demo/eval/base --output-dir runs/demo/eval
    longcurate eval report --config configs/demo.yaml   # every model folder of the run's eval folder
    longcurate eval run --config configs/demo.yaml      # the stage: eval.run's tasks on every model + report
    longcurate check contamination --train runs/demo/mixture/mixture.jsonl \\
        --eval runs/demo/eval/probes.jsonl runs/demo/eval/needle.jsonl --output contamination.json

Every verb also takes `--config FILE.yaml` and `key=value` overrides. Results are keyed
by model: `<eval.output_dir>/<label>/<task>/` (label: `--label`, a name, else the model's last path
component), one model per label (`<label>/model.json`; another model there is refused). Every output
is written by one step at a time (a second command on it stops at its lock) and skipped when complete
with the same settings. A verb that finishes with items failed or pending (a generation error, a
judge that gave no rating) writes what it could, then exits 75; rerun it to retry just those items.
Generation length, for every verb: `--max-new-tokens` > `eval.generate.max_new_tokens` > the
benchmark's own (`eval.probes.max_new_tokens`, `eval.needle.max_new_tokens`, LongBench's per-task
lengths: `eval.longbench.maxlen_file`, else LongBench's).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from longcurate.core.cli import add_config_args, add_flag, add_switch, comma_floats, comma_ints, comma_words, resolve_config
from longcurate.core.errors import UserError
from longcurate.core.eval_layout import EvalFiles, LongBenchFiles, model_label
from longcurate.core.jsonl import finite_json, read_json_if_valid
from longcurate.core.runner import raise_if_incomplete, step_state
from longcurate.eval.bench_cli import add_longbench_chat, add_val
from longcurate.eval.config import NeedleConfig, ProbesConfig
from longcurate.eval.flags import add_backend_flags, add_label, add_max_new_tokens, add_model_flags
from longcurate.eval.items import ITEM_FILES
from longcurate.eval.tasks import TASKS

LONGBENCH_DOC = """LongBench (v1) or LongBench-E on one model: predict what is missing, then score.

    longcurate eval longbench --data-dir data/longbench --tasks hotpotqa,trec --limit 20
    longcurate eval longbench --data-dir data/longbench --model runs/demo/checkpoint --max-new-tokens 8
    longcurate eval longbench --data-dir data/longbench --longbench-e      # LongBench-E buckets
    longcurate eval longbench --score-only pred/my-model --label my-model   # -> <output dir>/my-model/longbench/pred/

Predictions and result.json go to <output dir>/<label>/longbench/pred/ (pred_e/ for -E); with
--score-only, result.json goes there too (label: --label, else the label folder PRED_DIR sits in,
else PRED_DIR's name) and names PRED_DIR, so `eval report` finds every model's scores in one layout.
One folder per model, whose model.json names it (or the predictions); result.json and every prediction line name the model, and a
prediction is reused only for the same model, prompt, length and settings. Max new tokens per task:
--max-new-tokens > eval.generate.max_new_tokens > eval.longbench.maxlen_file > LongBench's own.
Failures (bad lines, generation errors, missing predictions) are excluded from the task means,
counted, listed in result.json and printed; generation errors leave the run incomplete (exit 75).
"""


def needs() -> str:
    """`probes (generate), nll (loglikelihood), ...`: each registered task and what it needs."""
    return ", ".join(f"{t.name} ({' + '.join(t.needs)})" for t in TASKS.values())


def _cmd_build(args: argparse.Namespace) -> int:
    from longcurate.eval.items import build_items, needle_step, probes_step

    cfg = resolve_config(args)
    built = build_items(cfg, [args.only] if args.only else ITEM_FILES)
    if "probes" in built:
        info = step_state(probes_step(cfg))
        if not info:
            print(f"probes: {built['probes']} has no .done marker (not built here): kept as given")
        else:
            print(f"probes: {info['items']} items -> {built['probes']}")
            print(f"skipped (ambiguous key): {info['skipped_ambiguous'] or 0}")
            print(f"context tokens per set: {info['context_tokens']}")
    if "needle" in built:
        info = step_state(needle_step(cfg))
        print(f"needle: {info['items']} items -> {built['needle']}" if info else
              f"needle: {built['needle']} has no .done marker (not built here): kept as given")
    return 0


def _model_run(args: argparse.Namespace) -> Any:
    """The config and the one model a single-task verb evaluates, under `--label`."""
    from longcurate.eval.labels import model_run

    cfg = resolve_config(args)
    return model_run(cfg, args.label or model_label(cfg.model), cfg.model)


def _done(stats: dict[str, Any], what: str, results: Path) -> int:
    print(f"results: {results}")
    raise_if_incomplete(stats, f"eval {what}")
    return 0


def _cmd_probes(args: argparse.Namespace) -> int:
    from longcurate.eval.retrieval import probes_task

    run = _model_run(args)
    s = probes_task(run)
    a = s["all"] or {}
    print(f"probes on {run.model}: all avg {100 * a.get('avg', float('nan')):.1f}, "
          f"gap {100 * a.get('gap', float('nan')):.1f} ({s['n_scored']} scored, {s['n_failed']} failed)")
    return _done(s, "probes", run.files.results("probes"))


def _cmd_needle(args: argparse.Namespace) -> int:
    from longcurate.eval.retrieval import needle_task

    run = _model_run(args)
    s = needle_task(run)
    print(f"needle on {run.model}: mean recall {100 * s['avg']:.1f} ({s['n_scored']} scored, {s['n_failed']} failed)")
    return _done(s, "needle", run.files.results("needle"))


def _cmd_nll(args: argparse.Namespace) -> int:
    from longcurate.eval.nll import nll_task

    run = _model_run(args)
    s = nll_task(run)
    mean = (s["all"] or {}).get("mean")
    print(f"nll on {run.model}: {'n/a' if mean is None else f'{mean:.4f}'} nats per answer token "
          f"({s['n_scored']} scored, {s['n_failed']} failed)")
    return _done(s, "nll", run.files.results("nll"))


def _cmd_longbench(args: argparse.Namespace) -> int:
    from longcurate.eval import longbench
    from longcurate.eval.imported import longbench_results
    from longcurate.eval.longbench_score import format_result

    cfg = resolve_config(args)
    lb = cfg.eval.longbench
    if args.score_only:
        limit = lb.limit if lb.limit is not None else cfg.eval.limit
        files = longbench_results(cfg, Path(args.score_only), args.label)
        result = longbench.score_only(Path(args.score_only), output_dir=files.folder, tasks=list(lb.tasks) or None,
                                      e=lb.e, data_dir=lb.data_dir, limit=limit)
    else:
        result = longbench.run_longbench(cfg, label=args.label, progress=not args.no_progress)
    print(format_result(result, LongBenchFiles(Path(result["_path"]).parent).rejected))
    if "model" in result:
        print(f"model: {result['model']} (label {result['label']})")
    print(f"wrote {result['_path']}")
    raise_if_incomplete(result["_stats"], "eval longbench")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from longcurate.eval.report import report_models
    from longcurate.eval.results import model_folders

    run_evals = resolve_config(args).layout().evals
    folders = [Path(f) for f in args.folders] or model_folders(run_evals)
    if not folders:
        raise UserError(f"no model results under {run_evals.folder} (name the result folders: eval report DIR ...)")
    labels = comma_words(args.labels) if args.labels else [None] * len(folders)
    if len(labels) != len(folders):
        raise UserError(f"--labels needs one label per folder: {len(labels)} label(s) for {len(folders)} folder(s)")
    evals = EvalFiles(Path(args.output_dir)) if args.output_dir else \
        (EvalFiles(folders[0].parent) if args.folders else run_evals)
    contamination = read_json_if_valid(evals.contamination)  # the stage's check, when it ran there
    print(f"report: {report_models(list(zip(folders, labels)), evals, contamination)}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from longcurate.eval.stage import run_stage

    stats = run_stage(resolve_config(args))
    print(finite_json(stats, "stdout", indent=2))
    raise_if_incomplete(stats, "eval run")
    return 0


def _cmd_contamination(args: argparse.Namespace) -> int:
    from longcurate.eval.contamination import format_table, require_clean, run_check
    from longcurate.eval.stage import training_data

    cfg = resolve_config(args)
    layout = cfg.layout()
    train = args.train or [p for p in [training_data(cfg)] if p is not None]
    evals = args.eval or [p for p in (layout.probes, layout.needle, layout.heldout) if p.exists()]
    if not train or not evals:
        raise UserError(f"check contamination: no {'training data' if not train else 'eval items'} in the run "
                        f"({layout.root}): name the files with {'--train' if not train else '--eval'} FILE ...")
    result, rejects = run_check(train, evals, args.output, answer_field=args.answer_field,
                                key_field=args.key_field, progress=not args.no_progress)
    print(format_table(result))
    print(rejects.summary())
    print(f"wrote {args.output}")
    if args.require_clean:
        require_clean(result.to_dict(), "check contamination")
    return 0


def _add_nll(verbs: Any) -> None:
    """`eval nll`: the answer NLL of one model (teacher-forced, no generation: no --max-new-tokens)."""
    p = verbs.add_parser("nll", help="answer NLL of one model on the probes and held-out samples (no generation)",
                         description="Teacher-forced NLL of each probe's answer (and each held-out sample's "
                                     "response) by evidence position, into <output dir>/<label>/nll/, through the "
                                     "backend's log-likelihood (hf, vllm, or an OpenAI-compatible server with "
                                     "echo + logprobs).")
    add_config_args(p)
    add_flag(p, "--model", "model", "model to score (HF id, folder, alias)")
    add_flag(p, "--output-dir", "eval.output_dir", "results folder: results go to <dir>/<label>/nll/ "
                                                   "(default: <output_dir>/eval)")
    add_backend_flags(p)
    add_flag(p, "--limit", "eval.limit", "at most this many items per source", type=int)
    add_flag(p, "--buckets", "eval.nll.buckets", "evidence-position buckets", type=int)
    add_label(p)
    p.set_defaults(func=_cmd_nll)


def _add_build(verbs: Any) -> None:
    b = verbs.add_parser("build", help="build the item files: probes (document / code / database) and needles",
                         description="The item files every model is evaluated on: probes.jsonl (contexts of N "
                                     "tokens, keys at evenly spread positions) and needle.jsonl (haystacks of "
                                     "each length with the needle at each depth), under <output_dir>/eval/. Each "
                                     "is rebuilt only when its settings change; a file there without a .done "
                                     "marker is the user's own and is kept as it is.")
    add_config_args(b)
    b.add_argument("--only", choices=list(ITEM_FILES), default=None, help="build only this item file (default: both)")
    add_flag(b, "--length", "eval.probes.context_tokens", "probe context length in tokens", type=int)
    add_flag(b, "--positions", "eval.probes.num_positions", "key positions per context (position_id)", type=int)
    add_flag(b, "--sets", "eval.probes.num_sets", "contexts per task (set_id)", type=int)
    add_flag(b, "--tasks", "eval.probes.tasks", "comma-separated: document,code,database", type=comma_words)
    add_flag(b, "--seed", "seed", "random seed", type=int)
    add_flag(b, "--model", "model", "whose tokenizer measures the length")
    add_flag(b, "--output", "eval.probes.output", "probe JSONL (default <output_dir>/eval/probes.jsonl)")
    add_flag(b, "--pieces", "eval.probes.pieces_dir", "build the probes from FILM's raw pieces in this folder "
             "(VaLProbing/pieces/) instead of the corpus and the standard library")
    b.set_defaults(func=_cmd_build)


def _add_longbench(verbs: Any) -> None:
    p = verbs.add_parser("longbench", help="LongBench / LongBench-E: predict and score, or --score-only PRED_DIR",
                         description=LONGBENCH_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p, own_length="per task: eval.longbench.maxlen_file, else LongBench's lengths",
                    limit_key="eval.longbench.limit", limit_help="at most this many items per task",
                    output_help="results folder: predictions and result.json go to <dir>/<label>/longbench/pred/, "
                                "with --score-only too (default: <output_dir>/eval)")
    add_flag(p, "--data-dir", "eval.longbench.data_dir", "folder of LongBench-format <task>.jsonl files")
    add_flag(p, "--tasks", "eval.longbench.tasks", "comma-separated task names (default: all found)", type=comma_words)
    add_switch(p, "--longbench-e", "eval.longbench.e", "LongBench-E: read <task>_e.jsonl, score by length bucket")
    p.add_argument("--score-only", metavar="PRED_DIR", default=None,
                   help="score the <task>.jsonl prediction files in PRED_DIR into <dir>/<label>/longbench/ "
                        "instead of generating (default: predict what is missing, then score)")
    p.set_defaults(func=_cmd_longbench)


def _add_single_tasks(verbs: Any) -> None:
    p = verbs.add_parser("probes", help="run and score the VaL-style probes on one model",
                         description="Predict and score the probe items (built with the config when missing) "
                                     "into <output dir>/<label>/probes/.")
    add_model_flags(p, own_length=f"eval.probes.max_new_tokens, {ProbesConfig().max_new_tokens}")
    add_flag(p, "--probes", "eval.probes.output", "probe JSONL (built with the config when missing)")
    add_flag(p, "--span", "eval.probes.span", "positions per aggregation span", type=int)
    p.set_defaults(func=_cmd_probes)

    n = verbs.add_parser("needle", help="needle in a haystack over a depth x length grid on one model",
                         description="Predict and score the needle items (built with the config when missing) "
                                     "into <output dir>/<label>/needle/.")
    add_model_flags(n, own_length=f"eval.needle.max_new_tokens, {NeedleConfig().max_new_tokens}")
    add_flag(n, "--lengths", "eval.needle.lengths", "comma-separated haystack lengths in tokens", type=comma_ints)
    add_flag(n, "--depths", "eval.needle.depths", "comma-separated depths in percent", type=comma_floats)
    add_switch(n, "--judge", "eval.needle.judge", "also rate each answer 1-10 with the judge (eval.judge.*; "
               "LongAlign's needle rating), beside the key-word recall")
    n.set_defaults(func=_cmd_needle)
    _add_nll(verbs)


def register(sub: Any) -> None:
    ev = sub.add_parser("eval", help="evaluate: build, probes, needle, nll, longbench, longbench-chat, val, report, run",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = ev.add_subparsers(dest="eval_command", metavar="VERB", required=True)
    _add_build(verbs)
    _add_single_tasks(verbs)
    _add_longbench(verbs)
    add_longbench_chat(verbs)  # eval/bench_cli.py: the papers' own benchmarks
    add_val(verbs)

    r = verbs.add_parser("report", help="Markdown report + PNG plots comparing result folders",
                         description="Compare models' result folders: report.md and plots/. Figures computed on "
                                     "different item sets are marked as not comparable. KEY=VALUE overrides may "
                                     "stand among the folders.")
    r.add_argument("folders", nargs="*", metavar="RESULT_DIR",
                   help="a model's folder (holding probes/ needle/ ...) (default: every model folder with results "
                        "in the run's eval folder, <output_dir>/eval or eval.output_dir)")
    add_config_args(r, positional=False)
    r.add_argument("--labels", default=None, help="comma-separated model names (default: folder names)")
    r.add_argument("--output-dir", default=None, help="where report.md and plots/ go (default: the first folder's "
                                                      "parent; without folders, the run's eval folder)")
    r.set_defaults(func=_cmd_report)

    s = verbs.add_parser("run", help="the eval stage: eval.run's tasks on every model of eval.models, then the report",
                         description="Item files, the contamination check, then eval.run's tasks on every model of "
                                     "eval.models, each into <output dir>/<label>/ (label: checkpoint, base, or the "
                                     "model's last path component), then the report. Exits 75 when a task left items "
                                     f"failed or pending (after writing all it could). Tasks (what each needs): {needs()}.")
    add_config_args(s)
    add_flag(s, "--models", "eval.models", "comma-separated models to evaluate: checkpoint, base, or names/paths",
             type=comma_words)
    add_max_new_tokens(s, "each benchmark's own")
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
    add_config_args(c)
    c.add_argument("--train", nargs="+", default=None, metavar="FILE",
                   help="training data (JSONL, JSON, Parquet, datasets folders) (default: the run's mixture, "
                        "else its samples)")
    c.add_argument("--eval", nargs="+", default=None, metavar="FILE",
                   help="eval item files (JSONL, JSON, Parquet, datasets folders) (default: the run's probe, "
                        "needle and held-out files that exist)")
    c.add_argument("--answer-field", default=None, help="check this field of every eval line (string or list) "
                                                        "(default: by the line's kind: probe, needle, LongBench, sample)")
    c.add_argument("--key-field", default=None, help="and this one (default: none)")
    c.add_argument("--output", default="contamination.json", help="per-item JSON (default: contamination.json)")
    c.add_argument("--require-clean", action="store_true",
                   help="exit 2 naming the items when any occurs exactly (default: report only)")
    c.set_defaults(func=_cmd_contamination)


__all__ = ["register"]
