"""The `longcurate` command: one noun per stage, one verb per step.

    longcurate run CONFIG [KEY=VALUE ...]            every stage in order (synth, select, train, eval)
    longcurate synth run | report
    longcurate select score {hmg,cam} | rank | budget | diagnose | merge | run
    longcurate train mix | tokenize | fit | run
    longcurate eval build | probes | needle | nll | longbench | longbench-chat | val | report | run
    longcurate check contamination --train FILE... --eval FILE...
    longcurate ablate CONFIG [KEY=VALUE ...]         every selection arm x seed on one pool, compared
    longcurate config show [CONFIG] [KEY=VALUE ...]  the resolved configuration

CONFIG is a YAML file or the name of a bundled one (demo, paper-7b, ablation-cpu, ablation-gpu).

Every command takes `--config FILE.yaml` and `key=value` overrides. User errors (bad arguments, bad
config, unusable input, refused settings, unreadable or unwritable paths) print one line and exit 2;
`--debug` shows their traceback too. Old spellings (`score hmg`, `rank`, `budget`, `mix`, `tokenize`,
`train --dataset ...`, `synth --num-samples ...`, `synth-report`, `probe build`) still work for one
release and print their new name.
"""

from __future__ import annotations

import argparse
import errno
import sys

from longcurate import __version__
from longcurate.ablate import cli as ablate_cli
from longcurate.config import RunConfig
from longcurate.core.cli import document_defaults, fail, parse_command_line, setup_logging
from longcurate.core.errors import EXIT_INCOMPLETE, Incomplete, UserError
from longcurate.eval import cli as eval_cli
from longcurate.select import cli as select_cli
from longcurate.synth import cli as synth_cli
from longcurate.train import cli as train_cli
from longcurate import pipeline

# Each module has `register(subparsers)` and imports heavy libraries lazily inside its commands.
COMMAND_MODULES = (synth_cli, select_cli, train_cli, eval_cli, pipeline, ablate_cli)

# Old spelling (leading words) -> new spelling. Kept for one release; each use prints the new name.
RENAMED: dict[tuple[str, ...], tuple[str, ...]] = {
    ("synth-report",): ("synth", "report"),
    ("score",): ("select", "score"),
    ("rank",): ("select", "rank"),
    ("budget",): ("select", "budget"),
    ("mix",): ("train", "mix"),
    ("tokenize",): ("train", "tokenize"),
    ("probe", "build"): ("eval", "build", "--only", "probes"),
}
# A stage noun followed by no verb meant its main step: `synth --num-samples 5` is `synth run ...`.
DEFAULT_VERB = {"synth": "run", "train": "fit"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="longcurate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"longcurate {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of user errors too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    document_defaults(parser, RunConfig())
    # Stage CLIs resolve the config through core.cli.resolve_config, and run an earlier stage (e.g. the
    # samples `select audit` plants from) through `run_stage`, without importing the root or that stage.
    parser.set_defaults(config_class=RunConfig, run_stage=pipeline.run_stage)
    return parser


def rewrite_old_spelling(argv: list[str]) -> list[str]:
    """Map an old command spelling to the new one, telling the user (on stderr) once."""
    start = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if start is None:
        return argv
    head = argv[start:]
    for old, new in RENAMED.items():
        if tuple(head[:len(old)]) == old:
            print(f"longcurate: `{' '.join(old)}` is now `{' '.join(new)}` (the old name goes away in the "
                  f"next release)", file=sys.stderr)
            return argv[:start] + list(new) + head[len(old):]
    noun = head[0]
    no_verb = len(head) == 1 or (head[1].startswith("-") and head[1] not in ("-h", "--help")) or "=" in head[1]
    if noun in DEFAULT_VERB and no_verb:
        verb = DEFAULT_VERB[noun]
        print(f"longcurate: `{noun}` without a verb is now `{noun} {verb}`", file=sys.stderr)
        return argv[:start] + [noun, verb] + head[1:]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parse_command_line(parser, rewrite_old_spelling(argv))
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Incomplete as e:  # finished what it could; a rerun retries what is left
        print(f"longcurate: {e}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except Exception as e:  # user errors: one line, exit 2; anything else is a bug and keeps its traceback
        message = user_error_message(e)
        if message is None or args.debug:
            raise
        return fail(message)


def user_error_message(e: BaseException) -> str | None:
    """The one-line message for an error the user can fix, or None for a bug."""
    if isinstance(e, UserError):
        return str(e)
    if isinstance(e, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return f"{e.strerror or e}: {e.filename}" if e.filename else str(e)
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return f"{e.strerror}: {e.filename or ''} (free some space or write elsewhere)".rstrip()
    return None


if __name__ == "__main__":
    raise SystemExit(main())
