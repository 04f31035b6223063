"""Parts `fsdp` and `deepspeed`: 5 steps of the real `longcurate train fit` under `torchrun
--nproc_per_node 1`, with FSDP (configs/fsdp.yaml) and with DeepSpeed ZeRO-2 (configs/ds_zero2.json),
on a small random Llama and a tiny tokenized dataset written here. Every loss must be finite, and the
first step's loss must match the same global batch's loss computed in-process from the same weights
with the library's plan and loss (the report also compares FSDP with DeepSpeed)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from gpu.fixtures import build_llama, save_dataset, to_device, train_samples, word_tokenizer
from gpu.flops import is_cuda
from gpu.runner import Context, Skip

ROOT = Path(__file__).resolve().parents[2]
PER_DEVICE, GRAD_ACCUM, SEED = 2, 2, 0
FIRST_LOSS_TOLERANCE = {"fp32": 1e-3, "bf16": 2e-2}  # relative; the Trainer logs losses to 4 digits


def write_inputs(ctx: Context, base: Path) -> list[dict]:
    import torch

    s = ctx.sizes
    model = build_llama(s.launch_shape, device="cpu", dtype=torch.float32, max_positions=s.launch_lengths[1])
    model.save_pretrained(base / "model")
    word_tokenizer(model.config.vocab_size).save_pretrained(base / "model")
    samples = train_samples(s.launch_samples, s.launch_lengths, model.config.vocab_size, seed=2)
    save_dataset(samples, base / "tok")
    return samples


def write_config(ctx: Context, base: Path, precision: str, **train) -> Path:
    cfg = {"output_dir": str(base / "run"), "seed": SEED,
           "train": {"dataset": str(base / "tok"), "init_from": str(base / "model"), "max_steps": ctx.sizes.launch_steps,
                     "save_steps": 10_000, "per_device_batch_size": PER_DEVICE, "grad_accum": GRAD_ACCUM,
                     "learning_rate": 1e-4, "warmup_ratio": 0.0, "precision": precision, "batching": "sorted",
                     "loss_weighting": "sequence", "logging_steps": 1, "resume": "never",
                     "gradient_checkpointing": precision == "bf16", **train}}
    path = base / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def fit(ctx: Context, config: Path, base: Path, timeout: float) -> dict:
    """torchrun, one process, the real CLI; the run's stats from the model step's marker."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "longcurate", "train", "fit", "-c", str(config)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    (base / "fit.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        print(out.stdout[-4000:], out.stderr[-8000:], sep="\n", flush=True)
        raise RuntimeError(f"`longcurate train fit` under torchrun exited {out.returncode}: {worker_error(out.stderr)}")
    return json.loads((base / "run" / "checkpoint.done").read_text())


def worker_error(stderr: str) -> str:
    """The worker's exception line (torchrun's own report after it only says that a child failed)."""
    lines = [ln.removeprefix("[rank0]: ").strip() for ln in stderr.splitlines()]
    found = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b", ln) and "ChildFailedError" not in ln]
    return (found or lines or ["(no output)"])[-1][:500]


def first_step_loss(base: Path, samples: list[dict], precision: str, device: str) -> float:
    """The first global batch's loss from the saved initial weights: the library's plan (same seed, same
    batch sizes) and loss, as the Trainer's first step computes it before any update."""
    import contextlib

    import torch
    from transformers import AutoModelForCausalLM

    from longcurate.train.batching import make_plan, step_groups
    from longcurate.train.loss import causal_lm_loss_sum

    model = AutoModelForCausalLM.from_pretrained(base / "model", dtype=torch.float32).to(device)
    plan = make_plan(samples, batching="sorted", loss_weighting="sequence", per_device=PER_DEVICE,
                     grad_accum=GRAD_ACCUM, world_size=1, seed=SEED, pad_token_id=0,
                     lengths=[x["length"] for x in samples])
    first = step_groups(plan.sampler.order(0), plan.global_batch)[0]
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext())
    total, items = 0.0, 0
    with torch.no_grad(), autocast:
        for j in range(0, len(first), PER_DEVICE):
            batch = to_device(plan.collator([samples[i] for i in first[j:j + PER_DEVICE]]), device)
            total += float(causal_lm_loss_sum(model, batch)[0])
            items += int(batch["num_items"])
    return total / items


def run_launch(ctx: Context, kind: str, **train) -> dict:
    import time

    device = ctx.device
    precision = "bf16" if is_cuda(device) else "fp32"
    base = ctx.work / kind
    base.mkdir(parents=True, exist_ok=True)
    samples = write_inputs(ctx, base)
    ctx.record(model=ctx.sizes.launch_shape, precision=precision, steps_asked=ctx.sizes.launch_steps,
               global_batch=PER_DEVICE * GRAD_ACCUM)
    t0 = time.perf_counter()
    stats = fit(ctx, write_config(ctx, base, precision, **train), base, timeout=max(ctx.seconds_left() - 10, 1))
    losses = [h["loss"] for h in stats["log_history"]]
    ctx.record(seconds_fit=round(time.perf_counter() - t0, 1), distributed=stats.get("distributed"),
               steps=stats.get("steps"), losses=losses, finite=all(math.isfinite(x) for x in losses))
    if len(losses) != ctx.sizes.launch_steps or not all(math.isfinite(x) for x in losses):
        raise AssertionError(f"expected {ctx.sizes.launch_steps} finite losses, got {losses}")
    reference = first_step_loss(base, samples, precision, device)
    rel = abs(losses[0] - reference) / abs(reference)
    ctx.record(first_loss=losses[0], reference_first_loss=reference, first_loss_rel_diff=rel)
    if not rel <= FIRST_LOSS_TOLERANCE[precision]:
        raise AssertionError(f"first-step loss {losses[0]} differs from the in-process {reference:.6f} "
                             f"by {rel:.2e} (relative)")
    return {}


def run_fsdp(ctx: Context) -> dict:
    result = run_launch(ctx, "fsdp", fsdp="full_shard", fsdp_config=str(ROOT / "configs" / "fsdp.yaml"))
    if not is_cuda(ctx.device):
        ctx.record(note="on the CPU one process trains unsharded (the library shards at load only for more "
                        "than one CPU process; tests/train/test_distributed.py runs CPU FSDP with 2)")
    return result


def run_deepspeed(ctx: Context) -> dict:
    if importlib.util.find_spec("deepspeed") is None:
        raise Skip("deepspeed is not installed (scripts/gpu_wheels.sh carries it to the GPU machine)")
    if not is_cuda(ctx.device) and not ctx.sizes.deepspeed_on_cpu:
        raise Skip("on a CPU DeepSpeed first compiles its shared-memory communication op (about 2 minutes), "
                   "beyond the smoke's budget; `--parts deepspeed` without --smoke runs it")
    return run_launch(ctx, "deepspeed", deepspeed=str(ROOT / "configs" / "ds_zero2.json"))
