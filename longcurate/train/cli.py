"""`longcurate train mix | tokenize | fit | run`: the train stage's steps, or all of them.

    longcurate train mix --long budgets/gateau-1000.jsonl --short sharegpt.jsonl --short-ratio 10 --output mix.jsonl
    longcurate train tokenize --input mix.jsonl --output mixture/tokenized --max-length 8192 --overlong truncate
    longcurate train fit --dataset mixture/tokenized --output checkpoint --batching sorted --loss-weighting sequence
    longcurate train run --config configs/demo.yaml                          # mix, tokenize, fit
    torchrun --nproc_per_node 8 -m longcurate train fit -c cfg.yaml --deepspeed configs/ds_zero3.json

Every verb also takes `--config FILE.yaml` and `key=value` overrides (e.g. `train.grad_accum=12`).
Run `mix` and `tokenize` in one process; `fit` under any launcher (see scripts/train_*.sh).
"""

from __future__ import annotations

import argparse

from longcurate.core.cli import add_config_args, add_flag, resolve_config
from longcurate.core.jsonl import finite_json


def _mix(args: argparse.Namespace) -> int:
    from longcurate.train.mix import summary
    from longcurate.train.stage import run_mix

    print(summary(run_mix(resolve_config(args), progress=not args.no_progress)))
    return 0


def _tokenize(args: argparse.Namespace) -> int:
    from longcurate.train.stage import run_tokenize

    print(finite_json(run_tokenize(resolve_config(args), progress=not args.no_progress), "stdout", indent=2))
    return 0


def _fit(args: argparse.Namespace) -> int:
    from longcurate.train.launch import dist_env
    from longcurate.train.stage import run_fit

    stats = run_fit(resolve_config(args))
    if dist_env()[0] == 0:
        print(finite_json({k: v for k, v in stats.items() if k != "log_history"}, "stdout", indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    from longcurate.train.launch import dist_env
    from longcurate.train.stage import run_stage

    stats = run_stage(resolve_config(args))
    if dist_env()[0] == 0:
        print(finite_json(stats, "stdout", indent=2))
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="mix, tokenize and fine-tune on the selected data (Trainer; DeepSpeed / FSDP)",
                       description="The train stage: `mix` the top budget with short chat data, `tokenize` it, "
                                   "`fit` the model; `run` does all three. Each step redoes nothing when its "
                                   "inputs and settings are unchanged.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    _register_mix(verbs)
    _register_tokenize(verbs)
    _register_fit(verbs)
    r = verbs.add_parser("run", help="mix -> tokenize -> fit, and the stage's manifest",
                         description="The whole train stage with the run's config (train.manifest.json).")
    add_config_args(r)
    r.set_defaults(func=_run)


def _register_mix(verbs) -> None:
    p = verbs.add_parser("mix", help="mix budget files with short chat data (deduplicated, shuffled by seed)",
                         description="Mix one or more budget files (long) with ShareGPT-format short chat data.")
    add_config_args(p)
    add_flag(p, "--long", "train.mix.long", "budget file(s) (default: the select stage's largest gateau budget)",
             nargs="+")
    add_flag(p, "--short", "train.mix.short", "short chat data: messages, ShareGPT or alpaca records (any container)")
    add_flag(p, "--short-size", "train.mix.short_size", "number of short samples", type=int)
    add_flag(p, "--short-ratio", "train.mix.short_ratio", "short samples per long sample", type=float)
    add_flag(p, "--output", "train.mix.output", "mixture JSONL (its counts go to <output>.done)")
    add_flag(p, "--limit", "train.mix.limit", "at most this many records per input file", type=int)
    p.set_defaults(func=_mix)


def _register_tokenize(verbs) -> None:
    p = verbs.add_parser("tokenize", help="tokenize a mixture into a datasets folder (labels on assistant turns)",
                         description="Chat-template tokenization; over-long samples truncated in the middle or "
                                     "skipped.")
    add_config_args(p)
    add_flag(p, "--input", "train.tokenize.input", "mixture JSONL")
    add_flag(p, "--output", "train.tokenize.output", "output datasets folder")
    add_flag(p, "--model", "model", "model whose tokenizer and chat template are used")
    add_flag(p, "--template", "train.tokenize.template", "chat | film")
    add_flag(p, "--max-length", "train.tokenize.max_length", "tokens per sample", type=int)
    add_flag(p, "--overlong", "train.tokenize.overlong", "truncate | skip")
    add_flag(p, "--num-proc", "train.tokenize.num_proc", "processes for datasets.map", type=int)
    add_flag(p, "--limit", "train.tokenize.limit", "at most this many samples", type=int)
    p.set_defaults(func=_tokenize)


def _register_fit(verbs) -> None:
    p = verbs.add_parser("fit", help="fine-tune on a tokenized mixture (Trainer; DeepSpeed / FSDP passthrough)",
                         description="Long-context SFT with sorted batching or packing and token/sequence loss "
                                     "weighting. Resumes from the last checkpoint made with the same settings.")
    add_config_args(p)
    add_flag(p, "--dataset", "train.dataset", "tokenized datasets folder")
    add_flag(p, "--model", "train.init_from", "model to fine-tune (default: the run's model)")
    add_flag(p, "--output", "train.output", "final model folder")
    add_flag(p, "--checkpoints", "train.checkpoints", "Trainer checkpoint folder (resume)")
    add_flag(p, "--batching", "train.batching", "naive | sorted | packed")
    add_flag(p, "--sort-group", "train.sort_group", "sorted: length groups of one micro-step (micro) or optimiser step (global)")
    add_flag(p, "--loss-weighting", "train.loss_weighting", "token | sequence")
    add_flag(p, "--max-tokens", "train.max_tokens", "tokens per packed row", type=int)
    add_flag(p, "--batch-size", "train.per_device_batch_size", "per-device micro-batch", type=int)
    add_flag(p, "--grad-accum", "train.grad_accum", "gradient accumulation steps", type=int)
    add_flag(p, "--max-steps", "train.max_steps", "optimizer steps (overrides epochs)", type=int)
    add_flag(p, "--lr", "train.learning_rate", "peak learning rate", type=float)
    add_flag(p, "--deepspeed", "train.deepspeed", "DeepSpeed config JSON (configs/ds_zero3.json)")
    add_flag(p, "--fsdp", "train.fsdp", "FSDP options, e.g. 'full_shard offload'")
    add_flag(p, "--fsdp-config", "train.fsdp_config", "accelerate FSDP YAML / JSON (configs/fsdp.yaml)")
    add_flag(p, "--report-to", "train.report_to", "none | tensorboard | wandb")
    add_flag(p, "--resume", "train.resume", "auto | never | a checkpoint folder")
    add_flag(p, "--limit", "train.limit", "train on the first N samples only", type=int)
    p.set_defaults(func=_fit)
