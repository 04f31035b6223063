"""`longcurate run CONFIG`: every stage in order, each resumable, so a re-run redoes nothing.

Each stage package has `stage.py` with `run_stage(cfg: RunConfig) -> dict` (its stats).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import time
from pathlib import Path

from longcurate.core.cli import add_config_args, resolve_config
from longcurate.core.config import dump_yaml, to_dict
from longcurate.core.jsonl import atomic_open
from longcurate.core.runinfo import write_manifest

log = logging.getLogger("longcurate.run")

STAGE_ORDER = ["synth", "select", "train", "eval"]


def available_stages() -> list[str]:
    out = []
    for name in STAGE_ORDER:
        try:
            importlib.import_module(f"longcurate.{name}.stage")
        except ModuleNotFoundError as e:
            if e.name == f"longcurate.{name}.stage":
                continue
            raise
        out.append(name)
    return out


def run_pipeline(cfg) -> dict:
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "config.resolved.yaml") as f:
        f.write(dump_yaml(cfg))
    unknown = [s for s in cfg.stages if s not in STAGE_ORDER]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {STAGE_ORDER}")
    have = available_stages()
    stats = {}
    for name in STAGE_ORDER:
        if name not in cfg.stages:
            continue
        if name not in have:
            log.warning("stage %s is not available in this version; skipped", name)
            continue
        t0 = time.time()
        log.info("=== stage %s ===", name)
        stats[name] = importlib.import_module(f"longcurate.{name}.stage").run_stage(cfg)
        stats[name]["seconds"] = round(time.time() - t0, 1)
        log.info("stage %s done in %.1f s", name, stats[name]["seconds"])
    write_manifest(out / "run.manifest.json", "run", to_dict(cfg), stats)
    return stats


def _cmd_run(args: argparse.Namespace) -> int:
    if args.config_file and "=" in args.config_file and not args.config_file.endswith((".yaml", ".yml")):
        args.overrides = [args.config_file, *(args.overrides or [])]  # `run key=value` with no config file
    elif args.config_file and not args.config:
        args.config = args.config_file
    cfg = resolve_config(args)
    run_pipeline(cfg)
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="run every stage that exists, in order (synth, select, train, eval)",
                       description="Chain every stage on one config. Each stage resumes, so a re-run redoes nothing.")
    p.add_argument("config_file", nargs="?", metavar="CONFIG.yaml", help="the config (same as --config)")
    add_config_args(p)
    p.set_defaults(func=_cmd_run)
