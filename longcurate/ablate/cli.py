"""`longcurate ablate CONFIG [KEY=VALUE ...]`: train every arm x seed on one scored pool and compare.

    longcurate ablate ablation-cpu                        # the CPU experiment (<= 60 min, 2 cores)
    longcurate ablate ablation-gpu                        # every arm, three seeds, one H100
    longcurate ablate ablation-cpu --arms gateau,random --seeds 0,1,2
    longcurate ablate ablation-cpu --budget 40000 --budget-unit tokens
    longcurate ablate my-config.yaml ablate.measures=[nll,probes] ablate.output=runs/abl-2

CONFIG is a YAML file or a bundled config name (configs/ablation-cpu.yaml, configs/ablation-gpu.yaml).
Writes `<output_dir>/ablation/report.md` (+ report.json, plots/). Killed, it continues where it
stopped when run again; a finished arm is never retrained.
"""

from __future__ import annotations

import argparse

from longcurate.core.cli import add_config_args, add_flag, comma_ints, comma_words


def _cmd_ablate(args: argparse.Namespace) -> int:
    from longcurate.config import resolve_config

    cfg = resolve_config(args)  # a bad value stops here, before the ablation's modules load
    from longcurate.ablate.stage import run_ablation

    run_ablation(cfg)
    return 0


def register(sub) -> None:
    p = sub.add_parser("ablate", help="train every selection arm x seed on one pool and compare them",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config_file", nargs="?", metavar="CONFIG",
                   help="the config: a YAML file or a bundled name such as ablation-cpu (same as --config)")
    add_config_args(p)
    add_flag(p, "--arms", "ablate.arms", "arms, comma-separated", type=comma_words)
    add_flag(p, "--seeds", "ablate.seeds", "training seeds, comma-separated", type=comma_ints)
    add_flag(p, "--budget", "ablate.budget", "long samples (or a fraction < 1) per arm, or tokens", type=float)
    add_flag(p, "--budget-unit", "ablate.budget_unit", "samples | tokens", choices=["samples", "tokens"])
    add_flag(p, "--measures", "ablate.measures", "nll and/or probes; the first is primary", type=comma_words)
    p.set_defaults(func=_cmd_ablate)
