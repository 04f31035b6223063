"""Scale benchmark: every data step at three sizes, CPU seconds and peak RSS of each (a fresh child
process per measurement, its resource usage from `os.wait4`), the log-log slopes, and the targets
judged: CPU time slope ≤ 1.1 (linear); peak RSS at the largest size ≤ 1.5 GB (the scoring step stops
before its first forward, so the model is not in it). Inputs are synthetic, made by the script
(`scale_data.py`) under --work and reused between runs of the same size.

    python benchmarks/scale_bench.py                      # full: 10K / 100K / 1M rows, 1M / 10M / 100M tokens
    python benchmarks/scale_bench.py --quick              # tiny sizes: the suite's smoke test
    python benchmarks/scale_bench.py --steps rank,merge --markdown table.md

Steps (`scale_steps.py`): rank, budget, diagnose, merge (CAM parts of two shards), pool (an
ablation's read of the scored pool, every sample read back once), score-input
(`select score` up to its first forward: read, spill, tokenize to plan, the first chunk tokenized
again), mix (1,000 long samples + N ShareGPT chats, 1,000 of them used), tokenize (a mixture into the
Arrow dataset) and json-array (a `.json` list of N records read). CPU seconds are reported whole and
net of the child's start-up (its imports, measured once per step by a child that only imports);
slopes are fitted on the net figures.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SIZES = {"full": {"rows": (10_000, 100_000, 1_000_000), "tokens": (1_000_000, 10_000_000, 100_000_000)},
         "quick": {"rows": (200, 400, 800), "tokens": (20_000, 40_000, 80_000)}}
RSS_TARGET_MB = 1500.0
SLOPE_TARGET = 1.1
# The paper's setting (LongAlign-10k at up to 64K tokens: ~10K samples, ~655M tokens; ShareGPT: 90K chats),
# in each step's unit: where the table's fit is extrapolated to.
PAPER = {"rank": 10_000, "budget": 10_000, "diagnose": 10_000, "merge": 10_000, "pool": 10_000, "score-input": 655_000_000,
         "mix": 90_000, "tokenize": 655_000_000, "json-array": 90_000}


@dataclass
class Measured:
    step: str
    size: int
    cpu_s: float
    wall_s: float
    rss_mb: float
    start_cpu_s: float = 0.0

    @property
    def net_cpu_s(self) -> float:
        return max(self.cpu_s - self.start_cpu_s, 1e-3)


def child(step: str, size: int, folder: Path, baseline: bool) -> None:
    """What the measured process runs: the step's imports, then (unless `baseline`) the step."""
    import importlib

    from scale_steps import STEPS

    for module in STEPS[step].imports:
        importlib.import_module(module)
    if not baseline:
        STEPS[step].run(folder, size)


def measure(step: str, size: int, folder: Path, baseline: bool = False) -> tuple[float, float, float]:
    """(CPU seconds, wall seconds, peak RSS MB) of one child process (and the processes it waited for)."""
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--size", str(size), "--folder", str(folder)]
    with open(out.parent / f"{step}.log", "w") as log:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd + (["--baseline"] if baseline else []), stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{step} at {size} failed; see {out.parent / f'{step}.log'}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024.0


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y on log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def at(size: float, points: list[Measured], value) -> float:
    """`value` at `size` on the least-squares line through the measurements (value = a + b · size)."""
    xs, ys = [p.size for p in points], [value(p) for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my + b * (size - mx)


def run_step(step: str, sizes: tuple[int, ...], work: Path, baseline: bool) -> list[Measured]:
    from scale_steps import STEPS

    spec, out = STEPS[step], []
    start = None
    for size in sizes:
        folder = work / f"{spec.unit}-{size}"
        folder.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        spec.make(folder, size)
        made = time.perf_counter() - began
        if baseline and start is None:
            start = measure(step, size, folder, baseline=True)[0]
        cpu, wall, rss = measure(step, size, folder)
        out.append(Measured(step, size, cpu, wall, rss, start or 0.0))
        print(f"  {step:11s} {size:>11,} {spec.unit:6s} cpu {cpu:8.2f} s (net {out[-1].net_cpu_s:8.2f})  "
              f"wall {wall:8.2f} s  peak RSS {rss:8.1f} MB   (input made in {made:.0f} s)", flush=True)
    return out


def table(results: dict[str, list[Measured]]) -> str:
    from scale_steps import STEPS

    lines = ["| step | unit | size | CPU s | net CPU s | peak RSS MB | time slope | RSS at largest | targets |",
             "|---|---|---|---|---|---|---|---|---|"]
    for step, points in results.items():
        s = slope([p.size for p in points], [p.net_cpu_s for p in points])
        top = points[-1].rss_mb
        verdict = ("time ✓" if s <= SLOPE_TARGET else "time ✗") + (", RSS ✓" if top <= RSS_TARGET_MB else ", RSS ✗")
        for k, p in enumerate(points):
            tail = f"{s:.2f} | {top:,.0f} MB | {verdict}" if k == len(points) - 1 else " | | "
            lines.append(f"| {step if k == 0 else ''} | {STEPS[step].unit} | {p.size:,} | {p.cpu_s:,.1f} | "
                         f"{p.net_cpu_s:,.1f} | {p.rss_mb:,.0f} | {tail} |")
    return "\n".join(lines)


def paper_table(results: dict[str, list[Measured]]) -> str:
    from scale_steps import STEPS

    lines = ["| step | at | CPU s (net) | peak RSS MB |", "|---|---|---|---|"]
    for step, points in results.items():
        size = PAPER[step]
        cpu = at(size, points, lambda p: p.net_cpu_s)
        rss = at(size, points, lambda p: p.rss_mb)
        lines.append(f"| {step} | {size:,} {STEPS[step].unit} | {max(cpu, 0):,.0f} | {max(rss, 0):,.0f} |")
    return "\n".join(lines)


def main() -> int:
    from scale_steps import STEPS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, no start-up baseline (the suite's smoke test)")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps (default: all)")
    ap.add_argument("--work", default=None, help="where inputs are made and kept (default runs/scale-bench[-quick])")
    ap.add_argument("--markdown", default=None, help="also write the tables to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.size, Path(args.folder), args.baseline)
        return 0
    mode = "quick" if args.quick else "full"
    work = Path(args.work or HERE.parent / "runs" / ("scale-bench-quick" if args.quick else "scale-bench"))
    steps = [s for s in args.steps.split(",") if s]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        ap.error(f"unknown steps {unknown}; choose from {list(STEPS)}")
    print(f"scale bench ({mode}) in {work}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    results = {s: run_step(s, SIZES[mode][STEPS[s].unit], work, baseline=not args.quick) for s in steps}
    text = table(results) + "\n"
    if not args.quick:  # (tiny sizes say nothing about the paper's)
        text += f"\nExtrapolated to the paper's setting (a line through each step's three sizes):\n\n{paper_table(results)}\n"
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
