"""The `longcurate` command: one subcommand per stage, each `--config FILE.yaml` plus `key=value` overrides.

    longcurate synth --config configs/demo.yaml synth.num_samples=50
    longcurate synth report runs/demo/samples.jsonl
    longcurate run configs/demo.yaml            # every stage, in order
"""

from __future__ import annotations

import argparse
import importlib
import sys

from longcurate import __version__
from longcurate.core.cli import ConfigError, fail, setup_logging

# Each module has `register(subparsers)`; imported at start-up, so they import heavy libraries lazily.
STAGE_CLIS = [
    "longcurate.synth.cli",
    "longcurate.select.cli",
    "longcurate.train.cli",
    "longcurate.eval.cli",
    "longcurate.pipeline",
]

# Two-word commands whose first word is also a command of its own.
_ALIASES = {("synth", "report"): "synth-report"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="longcurate",
        description="Curate long-context instruction data: IN2 synthesis, GATEAU selection, SFT, evaluation.")
    parser.add_argument("--version", action="version", version=f"longcurate {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in STAGE_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("longcurate"):
                continue  # a stage that does not exist yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for (a, b), joined in _ALIASES.items():
        for i in range(len(argv) - 1):
            if argv[i] == a and argv[i + 1] == b:
                argv[i:i + 2] = [joined]
                break
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        return fail(str(e))
    except FileNotFoundError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
