"""The eval verbs that score against the papers' own benchmarks, registered by `eval/cli.py`:

    longcurate eval val --data VaLProbing-32K --predictions VaLProbing-32K/results/FILM-7B
    longcurate eval longbench-chat --data LongBench_Chat --model runs/x/checkpoint eval.judge.model=gpt-4
    longcurate eval longbench-chat --data LongBench_Chat --score-only preds.jsonl --label my-model

`eval val` scores FILM's released VaL files as FILM's `plot.py` does (`eval/val.py`); `eval
longbench-chat` generates LongBench-Chat answers and rates them with an OpenAI-compatible judge
(`eval/longbench_chat.py`, `eval/judge.py`; the key is read from `$eval.judge.api_key_env`, never
written), and exits 75 while a case is left failed or pending. Building probes from FILM's raw pieces
is `eval build --pieces DIR` (`eval/pieces.py`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from longcurate.core.cli import add_config_args, add_flag, resolve_config
from longcurate.core.runner import raise_if_incomplete
from longcurate.eval.flags import add_backend_flags, add_label, add_max_new_tokens


def _cmd_val(args: argparse.Namespace) -> int:
    from longcurate.eval.val import run_val

    output = Path(args.output) if args.output else Path(args.predictions) / "val_result.json"
    label = args.label or Path(args.predictions).resolve().name
    result = run_val(args.data, args.predictions, output, label, span=args.span)
    written = result["_written"]
    for task, t in result["tasks"].items():
        print(f"{task:9s} avg {t['avg']:6.2f}  gap {t['gap']:6.2f}  ({t['n']} items, {t['n_skipped']} skipped, "
              f"{t['positions']} positions, {len(t['sets'])} sets)")
    print(f"{'all':9s} avg {result['all']['avg']:6.2f}  gap {result['all']['gap']:6.2f}")
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


def _cmd_longbench_chat(args: argparse.Namespace) -> int:
    from longcurate.eval.imported import chat_results
    from longcurate.eval.longbench_chat import format_result, run_longbench_chat, score_only

    cfg = resolve_config(args)
    if args.score_only:
        files = chat_results(cfg, Path(args.score_only), args.label)
        result = score_only(cfg, args.score_only, output_dir=files.folder)
    else:
        result = run_longbench_chat(cfg, label=args.label)
    print(format_result(result))
    print(f"wrote {result['_path']}")
    raise_if_incomplete(result["_stats"], "eval longbench-chat")
    return 0


def add_val(verbs: Any) -> None:
    v = verbs.add_parser(
        "val", help="score FILM's released VaL probing files (document / code / database) as FILM's plot.py does",
        description="Scores FILM's official VaL probing files: DATA holds document_bi_32k.jsonl, "
                    "code_backward_32k.jsonl, database_forward_32k.jsonl and their <name>_skip_list.json; "
                    "PREDICTIONS holds sample_<name>.jsonl, line-aligned with the data, each line "
                    '{"samples": [text]} or {"sample": text}. Spans of --span positions, each read as the '
                    "released loop reads it (its last position left out); avg = mean over spans, gap = max - min, "
                    "in percent. Writes the JSON, a Markdown table (.md) and the position plot (.png) beside it.")
    v.add_argument("--data", required=True, metavar="DIR", help="folder of FILM's VaL data files and skip lists")
    v.add_argument("--predictions", required=True, metavar="DIR", help="folder of sample_<name>.jsonl files")
    v.add_argument("--output", default=None, metavar="FILE.json",
                   help="result JSON; .md and .png go beside it (default: PREDICTIONS/val_result.json)")
    v.add_argument("--label", default=None, help="the model's name in the table and plot (default: PREDICTIONS' name)")
    v.add_argument("--span", type=int, default=50, help="positions per span (default: 50, as released)")
    add_config_args(v)
    v.set_defaults(func=_cmd_val)


def add_longbench_chat(verbs: Any) -> None:
    p = verbs.add_parser(
        "longbench-chat", help="LongBench-Chat: generate answers, rate them 1-10 with a judge (score = mean x 10)",
        description="LongBench-Chat as LongAlign released it: DATA holds test_cases.json, few_shots.json and "
                    "prompt_fs.txt. Answers go to <output dir>/<label>/longbench-chat/pred.jsonl, ratings and the "
                    "score to result.json beside it. The judge is any OpenAI-compatible endpoint (eval.judge.*); "
                    "its key is read from $OPENAI_API_KEY (eval.judge.api_key_env) and never written. Every reply "
                    "is cached, so a rerun pays for nothing already rated; a case left failed or pending makes the command "
                    "exit 75 (rerun to rate it).")
    add_config_args(p)
    add_flag(p, "--data", "eval.longbench_chat.data_dir", "folder with test_cases.json, few_shots.json, prompt_fs.txt")
    add_flag(p, "--model", "model", "model to evaluate (HF id, folder, alias)")
    add_flag(p, "--output-dir", "eval.output_dir", "results folder: results go to <dir>/<label>/longbench-chat/, "
             "with --score-only too (default: <output_dir>/eval)")
    add_backend_flags(p)
    add_max_new_tokens(p, "eval.longbench_chat.max_new_tokens, 1024")
    add_flag(p, "--limit", "eval.longbench_chat.limit", "the first N cases", type=int)
    add_flag(p, "--judge-model", "eval.judge.model", "the judge model")
    add_flag(p, "--judge-base-url", "eval.judge.base_url", "the judge's OpenAI-compatible endpoint")
    add_label(p)
    p.add_argument("--score-only", metavar="PRED.jsonl", default=None,
                   help='rate the predictions in PRED.jsonl (lines {"idx": i, "pred": text}) into '
                        "<dir>/<label>/longbench-chat/ (label: --label, else the file's name) instead of "
                        "generating (default: generate what is missing, then rate)")
    p.set_defaults(func=_cmd_longbench_chat)


__all__ = ["add_val", "add_longbench_chat"]
