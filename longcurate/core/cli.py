"""Helpers every stage's CLI uses: `--config FILE` + `key=value` overrides + everyday flags, resolved
into one typed config; comma-separated list arguments; logging; the one-line error. The CLI parses and
shows progress; the work is in plain functions.

Conventions every command follows:
- a flag is a shortcut for one config key (`add_flag`, `add_switch`) and wins over `key=value`;
- a user error raises `UserError` (or `ConfigError`); `longcurate.cli.main` prints it on one line and
  exits 2, so no command catches errors itself;
- config rules (defaults, `0 means none`, ...) live in the config dataclasses, never in a command.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from typing import Any, TypeVar

from longcurate.core.config import apply_overrides, build, check_key, load_yaml, parse_override, set_path
from longcurate.core.errors import ConfigError, UserError

C = TypeVar("C")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", metavar="FILE.yaml", help="YAML config (see configs/); defaults otherwise")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides in dotted form, e.g. synth.num_samples=50 seed=3")


def add_flag(parser: argparse.ArgumentParser, flag: str, key: str, help: str, type: Any = str, **kw: Any) -> None:
    """A flag that is a shortcut for the config key `key` (flags win over key=value overrides)."""
    dest = flag.lstrip("-").replace("-", "_")
    parser.add_argument(flag, dest=dest, type=type, default=None, help=f"{help} [{key}]", **kw)
    flags = parser.get_default("_flag_keys") or {}
    flags[dest] = key
    parser.set_defaults(_flag_keys=flags)


_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*=")


def add_switch(parser: argparse.ArgumentParser, flag: str, key: str, help: str) -> None:
    """An on/off flag that sets the boolean config key `key` to true."""
    dest = flag.lstrip("-").replace("-", "_")
    parser.add_argument(flag, dest=dest, action="store_const", const=True, default=None, help=f"{help} [{key}]")
    flags = dict(parser.get_default("_flag_keys") or {})
    flags[dest] = key
    parser.set_defaults(_flag_keys=flags)


def comma_words(text: str) -> list[str]:
    """`a, b,c` -> ["a", "b", "c"] (empty items dropped)."""
    return [x.strip() for x in text.split(",") if x.strip()]


def comma_ints(text: str) -> list[int]:
    return [int(x) for x in comma_words(text)]


def comma_floats(text: str) -> list[float]:
    return [float(x) for x in comma_words(text)]


def resolve(args: argparse.Namespace, config_cls: type[C]) -> C:
    """YAML -> key=value overrides -> flags, built into `config_cls` (unknown keys are errors)."""
    data: dict[str, Any] = load_yaml(args.config) if getattr(args, "config", None) else {}
    overrides = list(getattr(args, "overrides", None) or [])
    flag_values: dict[str, Any] = {}
    for dest, key in (getattr(args, "_flag_keys", None) or {}).items():
        value = getattr(args, dest, None)
        if isinstance(value, list):  # a many-valued flag (`--long A B`) also swallows `key=value` after it
            overrides += [v for v in value if _OVERRIDE.match(str(v))]
            value = [v for v in value if not _OVERRIDE.match(str(v))] or None
        if value is not None:
            flag_values[key] = value
    config_file = getattr(args, "config", None)
    if config_file:
        build(config_cls, data, where=str(config_file))  # the file's own mistakes, named by the file
    for item in overrides:
        check_key(config_cls, ".".join(parse_override(item)[0]), where=f"command line override {item!r}")
    data = apply_overrides(data, overrides)
    for key, value in flag_values.items():
        set_path(data, key, value)
    return build(config_cls, data, where="command line" if (overrides or flag_values) else (config_file or "defaults"))


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    for noisy in ("httpx", "httpx2", "urllib3", "filelock", "datasets", "openai", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str) -> int:
    print(f"longcurate: error: {message}", file=sys.stderr)
    return 2


__all__ = ["add_config_args", "add_flag", "add_switch", "comma_words", "comma_ints", "comma_floats", "resolve",
           "setup_logging", "fail", "ConfigError", "UserError"]
