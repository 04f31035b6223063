"""Helpers every stage's CLI uses: `--config FILE` + `key=value` overrides + everyday flags,
resolved into one typed RunConfig. The CLI parses and shows progress; the work is in plain functions."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from typing import Any

from longcurate.core.config import ConfigError, apply_overrides, build, load_yaml, set_path


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


def resolve_config(args: argparse.Namespace):
    """YAML -> key=value overrides -> flags, built into RunConfig (unknown keys are errors)."""
    from longcurate.config import RunConfig

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
    data = apply_overrides(data, overrides)
    for key, value in flag_values.items():
        set_path(data, key, value)
    return build(RunConfig, data, where=getattr(args, "config", None) or "command line")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    for noisy in ("httpx", "httpx2", "urllib3", "filelock", "datasets", "openai", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str) -> int:
    print(f"longcurate: error: {message}", file=sys.stderr)
    return 2


__all__ = ["add_config_args", "add_flag", "resolve_config", "setup_logging", "fail", "ConfigError"]
