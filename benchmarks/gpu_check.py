"""The GPU check: every GPU path of the project in one command, at most 8 minutes on one H100.

    make gpu-check                                  # full sizes, on the GPU (runs/gpu-check/)
    make gpu-check ARGS="--out $OUT"                # on a lent GPU machine (carry .whl/: docs/gpu.md)
    make gpu-check ARGS=--smoke                     # every part at tiny sizes on the CPU (the test suite runs it)
    python benchmarks/gpu_check.py --parts scoring,cam --out /tmp/gc

Parts (benchmarks/gpu/): environment, scoring (engine vs per-sample reference, Llama-2-7B shape, bf16,
16K-32K tokens), cam (segment attention at 32K), training (naive / sorted / packed, ~1B Llama, 16K rows),
packing (packed rows = samples alone, sdpa / flex_attention), fsdp and deepspeed (5 steps of
`longcurate train fit` under torchrun), generation (hf backend at 8K-token prompts). Each runs in its own
process under a time limit; a failure is recorded with its traceback and the check goes on.

Writes gpu_check.json (every figure), gpu_check.md (the same as tables, the targets judged) and
gpu_check.log (every part's output) into --out, after every part. Exit status 1 when a part failed or
ran out of time, else 0 (missing a speed target is a figure, not a failure).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT), str(ROOT / "tests")]  # gpu/; the package; test oracles
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])


def parse_args(argv=None) -> argparse.Namespace:
    from gpu.sizes import PART_NAMES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "runs" / "gpu-check"), help="folder for gpu_check.{json,md,log}")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CPU, under 2 minutes)")
    ap.add_argument("--parts", default=",".join(PART_NAMES), help=f"comma list of {', '.join(PART_NAMES)}")
    ap.add_argument("--device", default="auto", help="auto (cuda when available) | cuda | cpu")
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole check (default 470; smoke 240)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the accelerator's dense bf16 peak, for MFU")
    ap.add_argument("--wheels", default="auto", choices=["auto", "always", "never"],
                    help="install .whl/ (scripts/gpu_wheels.sh); auto: when datasets is missing (the GPU image)")
    ap.add_argument("--wheel-dir", default=str(ROOT / ".whl"))
    ap.add_argument("--site", default=str(Path(tempfile.gettempdir()) / "longcurate-gpu" / "site-packages"),
                    help="where the wheels are installed (keep 'site-packages' in the path: see gpu/wheels.py)")
    ap.add_argument("--keep-work", action="store_true", help="keep the scratch folder (models, datasets, logs)")
    args = ap.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PART_NAMES)
    if unknown:
        ap.error(f"unknown part(s) {sorted(unknown)}; known: {', '.join(PART_NAMES)}")
    return args


def preload() -> dict:
    """Import the heavy modules once in the parent (each forked part inherits them) without touching CUDA."""
    import torch
    import transformers
    from transformers import LlamaForCausalLM  # noqa: F401

    import longcurate.core.engine  # noqa: F401
    import longcurate.core.segment_attention  # noqa: F401
    import longcurate.train.batching  # noqa: F401

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def device_name(device: str) -> str:
    """Asked in a forked child: the parent must never initialise CUDA (its children could not use it)."""
    from gpu.runner import Context, Part, run_part
    from gpu.sizes import SMOKE

    def probe(ctx: Context) -> dict:
        import torch

        return {"on_gpu": ctx.device.startswith("cuda"),
                "device_name": torch.cuda.get_device_name() if ctx.device.startswith("cuda") else "cpu"}

    with tempfile.TemporaryDirectory() as tmp:
        entry = run_part(Part("probe", probe, "device"), Context(SMOKE, Path(tmp), device), 120)
    return entry.get("result", {})


def main(argv=None) -> int:
    args = parse_args(argv)
    from gpu.wheels import install_wheels

    wheels = install_wheels(Path(args.wheel_dir), Path(args.site), args.wheels)
    from gpu.parts import PARTS
    from gpu.report import cross_checks, judge_targets, render_markdown, write_json
    from gpu.runner import Context, run_all
    from gpu.sizes import FULL, SMOKE

    sizes = SMOKE if args.smoke else FULL
    if args.budget:
        sizes = replace(sizes, budget_s=args.budget)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    t0 = time.monotonic()
    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "argv": sys.argv[1:], "smoke": args.smoke,
            "budget_s": sizes.budget_s, **preload(), **device_name(args.device)}
    report = {"meta": meta, "wheels": wheels, "parts": {}, "targets": [], "cross_checks": {}}

    def save(name: str, entry: dict) -> None:
        report["parts"][name] = entry
        report["meta"]["seconds"] = round(time.monotonic() - t0, 1)
        report["targets"] = judge_targets(report["parts"], bool(meta.get("on_gpu")))
        report["cross_checks"] = cross_checks(report["parts"])
        write_json(out / "gpu_check.json", report)
        (out / "gpu_check.md").write_text(render_markdown(report))
        part_log = work / f"{name}.log"
        with open(out / "gpu_check.log", "a") as log:
            log.write(f"===== {name}: {entry['status']}\n")
            log.write(part_log.read_text(errors="replace") if part_log.exists() else "")

    (out / "gpu_check.log").write_text("")
    chosen = [p for p in PARTS if p.name in args.parts.split(",")]
    parts = run_all(chosen, Context(sizes, work, args.device, args.peak_tflops), on_part=save)
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    print(f"[gpu-check] {round(time.monotonic() - t0, 1)} s; report: {out / 'gpu_check.md'}")
    return 1 if any(p["status"] in ("failed", "timeout") for p in parts.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
