"""The command line as people type it, read before argparse sees it.

- Global flags (`-v/--verbose`, `--debug`, `--no-progress`) are accepted before or after the noun
  and the verb: every parser of the tree declares them, the sub-commands with `SUPPRESS` defaults so
  a flag given earlier is not reset by a later parser.
- The Hugging Face spellings users bring from `transformers` scripts (`--learning_rate`,
  `--model_name_or_path`, `--num_train_epochs`, `--output_dir`, `--bf16`, ...) and any flag typed
  with underscores (`--max_new_tokens`) are read as this command's flag or config key, and the log
  says so (`respell`); the few that have no counterpart here are answered with what to use instead.
- A flag the command does not have is a usage error with a did-you-mean: a close flag of the
  command, else the config key of that name (`unknown_flag_message`).
"""

from __future__ import annotations

import argparse
import difflib
from dataclasses import dataclass
from typing import Any

from longcurate.core.errors import ConfigError

GLOBAL_FLAGS = {"verbose": ("--verbose", "-v"), "debug": ("--debug",), "no_progress": ("--no-progress",)}
GLOBAL_HELP = {"verbose": "debug logging (default: off)",
               "debug": "show the traceback of user errors too (default: off)",
               "no_progress": "no progress bars (default: shown)"}


def add_global_flags(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """The flags every command takes wherever they stand; only the top parser gives them defaults."""
    for dest, flags in GLOBAL_FLAGS.items():
        parser.add_argument(*flags, dest=dest, action="store_true", default=False if top else argparse.SUPPRESS,
                            help=GLOBAL_HELP[dest])


@dataclass(frozen=True)
class Spelling:
    """What a Hugging Face argument means here: the config key it sets; for a switch (`--bf16`), the
    value it sets (`on`) and, given `False` after it, the value it sets then (`off`); `instead`: a
    spelling with no counterpart, answered with what to use instead."""

    key: str | None
    on: str | None = None
    off: str | None = None
    instead: str = ""


HF_SPELLINGS: dict[str, Spelling] = {
    "model_name_or_path": Spelling("model"),
    "output_dir": Spelling("output_dir"),
    "seed": Spelling("seed"),
    "trust_remote_code": Spelling("trust_remote_code", on="true", off="false"),
    "learning_rate": Spelling("train.learning_rate"),
    "num_train_epochs": Spelling("train.epochs"),
    "max_steps": Spelling("train.max_steps"),
    "per_device_train_batch_size": Spelling("train.per_device_batch_size"),
    "gradient_accumulation_steps": Spelling("train.grad_accum"),
    "warmup_ratio": Spelling("train.warmup_ratio"),
    "weight_decay": Spelling("train.weight_decay"),
    "lr_scheduler_type": Spelling("train.lr_scheduler"),
    "adam_beta1": Spelling("train.adam_beta1"),
    "adam_beta2": Spelling("train.adam_beta2"),
    "max_grad_norm": Spelling("train.max_grad_norm"),
    "gradient_checkpointing": Spelling("train.gradient_checkpointing", on="true", off="false"),
    "bf16": Spelling("train.precision", on="bf16", off="fp32"),
    "fp16": Spelling(None, instead="fp16 mixed precision is not offered: use --bf16 (train.precision=bf16) or "
                                   "train.precision=fp32"),
    "deepspeed": Spelling("train.deepspeed"),
    "fsdp": Spelling("train.fsdp"),
    "fsdp_config": Spelling("train.fsdp_config"),
    "ddp_backend": Spelling("train.ddp_backend"),
    "report_to": Spelling("train.report_to"),
    "logging_steps": Spelling("train.logging_steps"),
    "save_steps": Spelling("train.save_steps"),
    "save_total_limit": Spelling("train.save_total_limit"),
    "resume_from_checkpoint": Spelling("train.resume"),
    "dataloader_num_workers": Spelling("train.dataloader_num_workers"),
    "attn_implementation": Spelling("train.attn_implementation"),
    "model_max_length": Spelling("train.tokenize.max_length"),
    "max_seq_length": Spelling("train.tokenize.max_length"),
    "cutoff_len": Spelling("train.tokenize.max_length"),
    "max_new_tokens": Spelling("eval.generate.max_new_tokens"),
    "per_device_eval_batch_size": Spelling("eval.generate.batch_size"),
}
BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def subparsers_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{name: parser} of a parser's subcommands (empty when it has none)."""
    for action in parser._actions:
        if isinstance(getattr(action, "choices", None), dict) and action.dest != argparse.SUPPRESS \
                and all(isinstance(v, argparse.ArgumentParser) for v in action.choices.values()):
            return dict(action.choices)
    return {}


def leaf_of(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.ArgumentParser, int] | None:
    """The command `argv` names (the parser with no subcommand) and where its own arguments start;
    None when argv names no complete command (argparse then says what is missing). Only global
    flags, which take no value, may stand before the noun and the verb."""
    i = 0
    while children := subparsers_of(parser):
        while i < len(argv) and argv[i].startswith("-"):
            i += 1
        if i >= len(argv) or argv[i] not in children:
            return None
        parser, i = children[argv[i]], i + 1
    return parser, i


def flag_of_key(parser: argparse.ArgumentParser, key: str) -> str | None:
    """The command's flag that is a shortcut for config key `key` (None when it has none)."""
    keys: dict[str, str] = parser.get_default("_flag_keys") or {}
    for action in parser._actions:
        if action.option_strings and keys.get(action.dest) == key:
            return action.option_strings[0]
    return None


def respell(parser: argparse.ArgumentParser, tokens: list[str]) -> tuple[list[str], list[str]]:
    """`tokens` (a command's own arguments) with every underscore or Hugging Face spelling replaced by
    the command's flag, else a `key=value` override; and one note per replacement for the log."""
    options = parser._option_string_actions
    out: list[str] = []
    notes: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            out += tokens[i - 1:]
            break
        name, eq, value = token[2:].partition("=")
        if not token.startswith("--") or f"--{name}" in options:
            out.append(token)
            continue
        hyphens = "--" + name.replace("_", "-")
        if hyphens in options:
            out.append(hyphens + (f"={value}" if eq else ""))
            notes.append(f"{token.split('=')[0]} read as {hyphens}")
            continue
        spelling = HF_SPELLINGS.get(name)
        if spelling is None:
            out.append(token)  # left to argparse: an unknown flag, with a did-you-mean
            continue
        flag = flag_of_key(parser, spelling.key) if spelling.key and spelling.on is None else None
        if flag is not None:  # the command's own flag for that key (its type, and it wins over key=value)
            words = [flag + (f"={value}" if eq else "")]
        else:
            words, i = _hf_value(token, spelling, eq, value, tokens, i)
        out += words
        notes.append(f"{token.split('=')[0]} (Hugging Face's spelling) read as {' '.join(words)}")
    return out, notes


def _hf_value(token: str, spelling: Spelling, eq: str, value: str, tokens: list[str], i: int,
              ) -> tuple[list[str], int]:
    """The words a Hugging Face argument becomes (`key=value`), and the index after what it consumed."""
    flag = token.split("=")[0]
    if spelling.key is None:
        raise ConfigError(f"{flag}: {spelling.instead}")
    if spelling.on is not None:  # a switch: `--bf16`, `--bf16 True`, `--bf16=false`
        word = value if eq else (tokens[i] if i < len(tokens) and tokens[i].lower() in BOOL_WORDS else None)
        if word is not None and word.lower() not in BOOL_WORDS:
            raise ConfigError(f"{flag} takes true or false, got {word!r}")
        i += 1 if word is not None and not eq else 0
        on = word is None or BOOL_WORDS[word.lower()]
        return [f"{spelling.key}={spelling.on if on else spelling.off}"], i
    if not eq:
        if i >= len(tokens) or tokens[i].startswith("--"):
            raise ConfigError(f"{flag} needs a value ({spelling.key})")
        value, i = tokens[i], i + 1
    return [f"{spelling.key}={value}"], i


def unknown_flag_message(parser: argparse.ArgumentParser, flag: str, config_cls: Any = None) -> str:
    """`unrecognized argument --modle; did you mean --model?`. A flag named like a config key's last
    part (`--e`, `--window`) points at this command's flag for that key, else at the key itself;
    any other flag at the command's closest flag."""
    name = flag.split("=")[0]
    key_name = name.lstrip("-").replace("-", "_")
    keys = [k for k in config_keys(config_cls) if k.rsplit(".", 1)[-1] == key_name] if config_cls else []
    noun = (parser.prog.split() + ["", ""])[1]  # `longcurate select rank`: the command's own section first
    keys.sort(key=lambda k: (not k.startswith(noun + "."), k.count(".")))
    flags = [f for k in keys if (f := flag_of_key(parser, k))]
    options = [o for o in parser._option_string_actions if o.startswith("--") and o != "--help"]
    close = flags[:1] or difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        hint = f"; did you mean {close[0]}?"
    elif keys:
        hint = f"; this command has no such flag: set the config key instead, e.g. {keys[0]}=VALUE"
    else:
        hint = ""
    return f"unrecognized argument {name}{hint} (see --help)"


def config_keys(cls: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a config dataclass (sections first-level first)."""
    import dataclasses

    out: list[str] = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
        if dataclasses.is_dataclass(default):
            out += config_keys(type(default), f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


__all__ = ["GLOBAL_FLAGS", "HF_SPELLINGS", "Spelling", "add_global_flags", "subparsers_of", "leaf_of", "flag_of_key",
           "respell", "unknown_flag_message", "config_keys"]
