"""`longcurate run CONFIG`: every stage in order, each resumable, so a re-run redoes nothing.

Each stage package has `stage.py` with `run_stage(cfg: RunConfig) -> dict` (its stats); the stages
talk only through the files of the run's layout (`RunConfig.layout()`). A stage that finishes with
items pending or failed (`core.runner.incomplete_parts`) is the last one run: the later stages would
read its partial output. The run's manifest is written either way, and the command then exits
"incomplete" (75) naming what is left.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any, Callable

from longcurate.config import STAGES, RunConfig, resolve_config
from longcurate.core.cli import add_config_args
from longcurate.core.config import dump_yaml
from longcurate.core.errors import ConfigError
from longcurate.core.jsonl import atomic_open
from longcurate.core.runinfo import write_manifest
from longcurate.core.runner import incomplete_parts, raise_if_incomplete

log = logging.getLogger("longcurate.run")


def _stage_runners() -> dict[str, Callable[[RunConfig], dict[str, Any]]]:
    """Stage name -> its run_stage, in pipeline order (imported here, not at start-up: they are heavy)."""
    from longcurate.eval.stage import run_stage as eval_stage
    from longcurate.select.stage import run_stage as select_stage
    from longcurate.synth.stage import run_stage as synth_stage
    from longcurate.train.stage import run_stage as train_stage

    return {"synth": synth_stage, "select": select_stage, "train": train_stage, "eval": eval_stage}


def run_pipeline(cfg: RunConfig) -> dict[str, Any]:
    """Every stage in `cfg.stages`, in pipeline order, up to the first incomplete one; their stats."""
    layout = cfg.layout()
    layout.root.mkdir(parents=True, exist_ok=True)
    with atomic_open(layout.resolved_config) as f:
        f.write(dump_yaml(cfg))
    runners = _stage_runners()
    stats: dict[str, Any] = {}
    for name in STAGES:
        if name not in cfg.stages:
            continue
        t0, c0 = time.time(), time.process_time()
        log.info("=== stage %s ===", name)
        stats[name] = runners[name](cfg)
        # CPU seconds (every thread of this process): on a shared machine the fairer figure than wall time
        stats[name]["seconds"], stats[name]["cpu_seconds"] = round(time.time() - t0, 1), round(time.process_time() - c0, 1)
        if incomplete_parts(stats[name]):
            log.info("stage %s is incomplete after %.1f s: the later stages are not run", name, stats[name]["seconds"])
            break
        log.info("stage %s done in %.1f s (%.1f CPU-s)", name, stats[name]["seconds"], stats[name]["cpu_seconds"])
    write_manifest(layout.manifest("run"), "run", cfg, stats)
    return stats


def run_stage(cfg: RunConfig, name: str) -> dict[str, Any]:
    """One stage's `run_stage` by name. The root parser hands it to stage commands that need an earlier
    stage's output (`select audit` makes the samples it plants from), so no stage imports another."""
    if name not in STAGES:
        raise ConfigError(f"unknown stage {name!r}; stages are {list(STAGES)}")
    return _stage_runners()[name](cfg)


def _cmd_run(args: argparse.Namespace) -> int:
    raise_if_incomplete(run_pipeline(resolve_config(args)), "run")
    return 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    print(dump_yaml(resolve_config(args)), end="")
    return 0


def register(sub) -> None:
    c = sub.add_parser("config", help="the resolved configuration", description="Inspect configurations.")
    csub = c.add_subparsers(dest="config_command", metavar="VERB", required=True)
    show = csub.add_parser("show", help="print the resolved configuration (file + overrides + defaults) as YAML",
                           description="Print the configuration a command would run with: defaults, then the "
                                       "YAML file (a path or a bundled name such as demo), then key=value overrides.")
    show.add_argument("config_file", nargs="?", metavar="CONFIG", help="a YAML file or a bundled config name")
    add_config_args(show)
    show.set_defaults(func=_cmd_config_show)

    p = sub.add_parser("run", help="run every stage in order (synth, select, train, eval)",
                       description="Chain every stage on one config. Each stage resumes, so a re-run redoes nothing.")
    p.add_argument("config_file", nargs="?", metavar="CONFIG",
                   help="the config: a YAML file or a bundled name such as demo (same as --config)")
    add_config_args(p)
    p.set_defaults(func=_cmd_run)
