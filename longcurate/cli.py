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

Every command takes `--config FILE.yaml` and `key=value` overrides, and its config is checked before
it starts. The global flags `-v/--verbose`, `--debug` and `--no-progress` go anywhere on the line;
Hugging Face spellings (`--learning_rate`, `--model_name_or_path`, `--output_dir`, `--bf16`, ...) and
flags typed with underscores are read as this command's flag or config key (the log says which), and
a mistyped flag gets a did-you-mean. User errors (bad arguments, bad config, unusable input, refused
settings, unreadable or unwritable paths) print one line and exit 2; `--debug` shows their traceback
too. A command that did all it could but left items pending or failed prints one line naming them and
exits 75; rerunning it retries what is left.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys

from longcurate import __version__
from longcurate.ablate import cli as ablate_cli
from longcurate.config import RunConfig
from longcurate.core.argv import add_global_flags, subparsers_of
from longcurate.core.cli import document_defaults, fail, parse_command_line, resolve_config, setup_logging
from longcurate.core.errors import EXIT_INCOMPLETE, Incomplete, UserError
from longcurate.eval import cli as eval_cli
from longcurate.select import cli as select_cli
from longcurate.synth import cli as synth_cli
from longcurate.train import cli as train_cli
from longcurate import pipeline

# Each module has `register(subparsers)` and imports heavy libraries lazily inside its commands.
COMMAND_MODULES = (synth_cli, select_cli, train_cli, eval_cli, pipeline, ablate_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="longcurate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"longcurate {__version__}")
    add_global_flags(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    _global_flags_everywhere(parser)
    document_defaults(parser, RunConfig())
    # Stage CLIs resolve the config through core.cli.resolve_config, and run an earlier stage (e.g. the
    # samples `select audit` plants from) through `run_stage`, without importing the root or that stage.
    parser.set_defaults(config_class=RunConfig, run_stage=pipeline.run_stage)
    return parser


def _global_flags_everywhere(parser: argparse.ArgumentParser) -> None:
    """`-v`, `--debug`, `--no-progress` on every noun and verb too (after the top parser's own)."""
    for child in subparsers_of(parser).values():
        add_global_flags(child)
        _global_flags_everywhere(child)


def quiet_progress() -> None:
    """`--no-progress`: no progress bars from tqdm (ours and the libraries'), the hub or datasets; set
    before the command imports them (`core.progress.bars_shown` reads it too). Commands that take a
    `progress` argument are also given False."""
    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ[name] = "1"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parse_command_line(parser, argv)
    setup_logging(args.verbose)
    if args.no_progress:
        quiet_progress()
    for note in args.respelled:
        logging.getLogger("longcurate.cli").info("%s", note)
    try:
        if hasattr(args, "overrides"):
            resolve_config(args)  # every command's config is checked before the command starts
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
        where = f": {e.filename}" if e.filename else " (the file is not known)"
        return f"{e.strerror}{where}; free some space or write elsewhere"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
