"""The flags every eval verb that evaluates one model shares (`cli.py`, `bench_cli.py` register them)."""

from __future__ import annotations

import argparse

from longcurate.core.cli import add_config_args, add_flag

LABEL_HELP = ("name of this model's results folder, <output dir>/<label>/ (a name, not a path); one model per "
              "label (default: the model's last path component)")


def add_label(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label", default=None, help=LABEL_HELP)


def add_max_new_tokens(p: argparse.ArgumentParser, own: str) -> None:
    """`--max-new-tokens`, the same for every verb that generates: the flag > `eval.generate.max_new_tokens`
    (from a file or key=value) > the benchmark's own length `own` (`GenerateConfig.new_tokens`)."""
    add_flag(p, "--max-new-tokens", "eval.generate.max_new_tokens",
             f"greedy answer length for every item, over the benchmark's own (default: {own})", type=int)


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    add_flag(p, "--backend", "eval.generate.backend", "model backend: hf | openai | vllm")
    add_flag(p, "--template", "eval.generate.template", "prompt template: chat | film | raw")


def add_model_flags(p: argparse.ArgumentParser, *, own_length: str, limit_key: str = "eval.limit",
                    limit_help: str = "at most this many items",
                    output_help: str = "results folder: results go to <dir>/<label>/ (default: <output_dir>/eval)") -> None:
    """The flags of every verb that evaluates one model by generation (probes, needle, longbench):
    `own_length` says where the verb's generation length comes from when --max-new-tokens is not given."""
    add_config_args(p)
    add_flag(p, "--model", "model", "model to evaluate (HF id, folder, alias)")
    add_flag(p, "--output-dir", "eval.output_dir", output_help)
    add_backend_flags(p)
    add_max_new_tokens(p, own_length)
    add_flag(p, "--limit", limit_key, limit_help, type=int)
    add_label(p)


__all__ = ["LABEL_HELP", "add_label", "add_max_new_tokens", "add_backend_flags", "add_model_flags"]
