"""Where the demo's CPU time goes: every stage of `longcurate run CONFIG` in one process, each under
cProfile with a CPU-time clock, then the CPU seconds per stage and, inside each stage, of the
functions that matter (model loads, scoring passes, generation, tokenization, the contamination
check, the report).

CPU seconds (user + system, every thread of the process) are the figure to compare on a shared
machine: wall time grows with the other jobs' load, CPU time much less. cProfile's clock here is
`time.process_time`, so the per-function figures are CPU seconds too (a few % of overhead from the
profiler itself on Python-heavy code, e.g. the token-by-token generation loop).

    .venv/bin/python benchmarks/demo_profile.py                               # configs/demo.yaml into runs/demo-profile
    .venv/bin/python benchmarks/demo_profile.py --stages eval --output runs/demo   # eval of an existing run
    .venv/bin/python benchmarks/demo_profile.py --stats runs/demo-profile/profile  # print saved profiles again

Writes `<output>/profile/<stage>.prof` (pstats files: `python -m pstats FILE`) and `summary.json`.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

STAGES = ("synth", "select", "train", "eval")
# (label, (file suffix, function name)): cumulative CPU seconds of the first matching entry of the profile.
WATCH = [
    ("model loads (load_model)", ("core/models.py", "load_model")),
    ("tokenizer loads", ("core/models.py", "load_tokenizer")),
    ("scoring engine passes (ScoringEngine._score)", ("core/engine.py", "_score")),
    ("select: score step", ("select/scoring.py", "score_file")),
    ("train: Trainer.train", ("transformers/trainer.py", "train")),
    ("eval: build items", ("eval/items.py", "build_items")),
    ("eval: contamination check", ("eval/contamination.py", "run_check")),
    ("eval: probes task", ("eval/retrieval.py", "probes_task")),
    ("eval: needle task", ("eval/retrieval.py", "needle_task")),
    ("eval: nll task", ("eval/nll.py", "nll_task")),
    ("eval: generation (HFModel.generate)", ("eval/hf_backend.py", "generate")),
    ("eval: model.generate (transformers)", ("transformers/generation/utils.py", "generate")),
    ("eval: answer NLL (HFModel.loglikelihood)", ("eval/hf_backend.py", "loglikelihood")),
    ("eval: prompt tokenization (prompt_ids)", ("eval/render.py", "prompt_ids")),
    ("eval: report", ("eval/report.py", "report_models")),
]


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def watched(stats: pstats.Stats) -> dict[str, dict[str, float]]:
    """CPU seconds (cumulative) and calls of the WATCH functions found in a profile."""
    out: dict[str, dict[str, float]] = {}
    for label, (suffix, name) in WATCH:
        for (path, _, fn), (_, calls, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
            if fn == name and path.replace(os.sep, "/").endswith(suffix):
                out[label] = {"cpu_s": round(cum, 1), "calls": calls}
                break
    return out


def run_stages(config: str, output: str, stages: list[str], overrides: list[str]) -> dict:
    from longcurate.config import resolve_config
    from longcurate.pipeline import run_pipeline

    prof_dir = Path(output) / "profile"
    prof_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"config": config, "overrides": overrides, "stages": {},
                     "load_average_start": os.getloadavg()}
    for stage in stages:
        ns = argparse.Namespace(config=config, overrides=[f"output_dir={output}", f"stages=[{stage}]", *overrides])
        cfg = resolve_config(ns)
        prof = cProfile.Profile(time.process_time)
        wall, cpu = time.time(), cpu_seconds()
        prof.enable()
        run_pipeline(cfg)
        prof.disable()
        wall, cpu = time.time() - wall, cpu_seconds() - cpu
        prof.dump_stats(prof_dir / f"{stage}.prof")
        summary["stages"][stage] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                                    "functions": watched(pstats.Stats(str(prof_dir / f"{stage}.prof")))}
        print(f"--- {stage}: {cpu:.1f} CPU-s, {wall:.1f} s wall (load average {os.getloadavg()[0]:.1f})", flush=True)
    summary["load_average_end"] = os.getloadavg()
    (prof_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def print_summary(summary: dict) -> None:
    total = sum(s["cpu_s"] for s in summary["stages"].values())
    wall = sum(s["wall_s"] for s in summary["stages"].values())
    print(f"\n{'stage / function':58s} {'CPU s':>8s} {'calls':>6s}")
    for stage, s in summary["stages"].items():
        print(f"{stage:58s} {s['cpu_s']:8.1f}        (wall {s['wall_s']:.1f} s)")
        for label, f in s["functions"].items():
            print(f"  {label:56s} {f['cpu_s']:8.1f} {f['calls']:6d}")
    print(f"{'all':58s} {total:8.1f}        (wall {wall:.1f} s; load average {summary.get('load_average_start')} "
          f"-> {summary.get('load_average_end')})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--output", default="runs/demo-profile")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--stats", help="print the summary.json of this profile folder and exit")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = ap.parse_args()
    if args.stats:
        print_summary(json.loads((Path(args.stats) / "summary.json").read_text()))
        return
    print_summary(run_stages(args.config, args.output, args.stages, args.overrides))


if __name__ == "__main__":
    main()
