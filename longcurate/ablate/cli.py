"""`longcurate ablate CONFIG [KEY=VALUE ...]`: train every arm x seed on one scored pool and compare.

    longcurate ablate ablation-cpu                        # 14 models on 2 CPU cores (45 min measured)
    longcurate ablate ablation-cpu-mixed                  # a pool with planted types, 26 models (57 min)
    longcurate ablate ablation-gpu                        # planted pool, 45 models, one H100 (not yet run)
    longcurate ablate ablation-cpu --arms gateau,random --seeds 0,1,2
    longcurate ablate ablation-cpu --budget 40000 --budget-unit tokens
    longcurate ablate ablation-cpu-mixed --subsets 6 --budget 600 --budget-unit response_tokens
    longcurate ablate my-config.yaml ablate.measures=[nll,probes] ablate.output=runs/abl-2

CONFIG is a YAML file or a bundled config name (configs/ablation-cpu.yaml, ablation-cpu-mixed.yaml,
ablation-gpu.yaml).
Writes `<output_dir>/ablation/report.md` (+ report.json, plots/). Killed, it continues where it
stopped when run again; a finished arm is never retrained.
"""

from __future__ import annotations

import argparse

from longcurate.ablate.config import UNITS
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
    add_flag(p, "--subsets", "ablate.subsets", "draws of the random arm (and the control)", type=int)
    add_flag(p, "--budget-unit", "ablate.budget_unit", "samples | tokens | response_tokens", choices=list(UNITS))
    add_flag(p, "--measures", "ablate.measures", "nll and/or probes; the first is primary", type=comma_words)
    p.set_defaults(func=_cmd_ablate)
