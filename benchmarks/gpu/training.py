"""Parts `training` and `packing`: the train stage's batching on the GPU.

training: a randomly initialised ~1B Llama, rows of up to 16K tokens, bf16 autocast over fp32 master
          weights, gradient checkpointing, AdamW: one epoch over the same samples with naive, sorted
          and packed batching (longcurate.train.batching.make_plan, the library's collators and loss),
          real tokens/s, MFU and peak memory of each.
packing:  a packed row computes what its samples compute alone (logits, and the sequence-weighted
          loss) with SDPA and with FlexAttention (transformers' own implementations; flash-attn 2's
          varlen path as well when it is installed).
"""

from __future__ import annotations

import importlib.util

from gpu.fixtures import build_llama, to_device, train_samples
from gpu.flops import TRAIN_FORMULA, is_cuda, measure, mfu, peak_tflops, rounded, train_flops
from gpu.runner import Context
from gpu.scoring import device_name

PACK_TOLERANCE = {"float32": 2e-4, "bfloat16": 5e-2}  # largest |logit difference|, packed vs alone


def micro_batches(plan, per_device: int) -> list[list[dict]]:
    """The plan's first epoch as the DataLoader cuts it: consecutive indices of its sampler."""
    order = plan.sampler.order(0)
    return [[plan.train_dataset[i] for i in order[j:j + per_device]] for j in range(0, len(order), per_device)]


def train_epoch(model, optimizer, batches: list[dict], device: str) -> None:
    import contextlib

    import torch

    from longcurate.train.loss import causal_lm_loss_sum

    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if is_cuda(device) else contextlib.nullcontext())
    for batch in batches:
        batch = to_device(batch, device)
        with autocast:
            loss_sum, _ = causal_lm_loss_sum(model, batch)
        (loss_sum / batch["num_items"].clamp_min(1)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def throughput(ctx: Context, model, optimizer, samples: list[dict], mode: str, attn: str) -> dict:
    from longcurate.train.batching import make_plan

    s, device = ctx.sizes, ctx.device
    lengths = [x["length"] for x in samples]
    plan = make_plan(samples, batching=mode, loss_weighting="sequence", per_device=s.train_micro, grad_accum=1,
                     world_size=1, seed=0, pad_token_id=0, max_tokens=s.train_row,
                     flatten=attn.startswith("flash_attention"), lengths=lengths)
    batches = [plan.collator(b) for b in micro_batches(plan, s.train_micro)]
    train_epoch(model, optimizer, batches[:1], device)  # warm-up (allocator, kernels), not timed
    _, seconds, peak = measure(lambda: train_epoch(model, optimizer, batches, device), device)
    real = sum(lengths)
    slots = sum(int(b["input_ids"].numel()) for b in batches)
    return {"micro_batches": len(batches), "real_tokens": real, "padding": round(1 - real / slots, 4),
            "seconds": rounded(seconds), "tokens_per_s": round(real / seconds),
            "mfu": mfu(train_flops(model, samples), seconds, peak_tflops(device_name(device), ctx.peak_tflops)),
            "peak_gib": rounded(peak, 2)}


def run_training(ctx: Context) -> dict:
    import torch

    from longcurate.train.launch import resolve_attention

    s, device = ctx.sizes, ctx.device
    attn = resolve_attention("auto")  # flash-attn 2 when installed on CUDA, else SDPA: what `train fit` uses
    model = build_llama(s.train_shape, device=device, dtype=torch.float32, attn=attn,
                        max_positions=s.train_row).train()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=is_cuda(device))
    samples = train_samples(s.train_samples, s.train_lengths, model.config.vocab_size)
    ctx.record(model=s.train_shape, attn_implementation=attn, precision="bf16 autocast" if is_cuda(device) else "fp32",
               samples=len(samples), row_tokens=s.train_row, micro_batch=s.train_micro, flop_formula=TRAIN_FORMULA)
    modes: dict[str, dict] = {}
    for mode in ("naive", "sorted", "packed"):
        modes[mode] = throughput(ctx, model, optimizer, samples, mode, attn)
        ctx.record(modes=modes)
    base = modes["naive"]["tokens_per_s"]
    return {"speedup_vs_naive": {m: round(v["tokens_per_s"] / base, 3) for m, v in modes.items()}}


def alone(model, rows: list[list[dict]]) -> tuple[list, float]:
    """Every sample run alone (the reference): its logits, and the sum of its sequence-weighted loss."""
    import torch

    from longcurate.train.batching import PaddedCollator
    from longcurate.train.loss import causal_lm_loss_sum

    device = next(model.parameters()).device
    logits, loss = [], 0.0
    with torch.no_grad():
        for sample in (x for row in rows for x in row):
            single = to_device(PaddedCollator(0, "sequence")([sample]), device)
            logits.append(model(input_ids=single["input_ids"], attention_mask=single["attention_mask"]).logits[0].float())
            loss += float(causal_lm_loss_sum(model, single)[0])
    return logits, loss


def packed_vs_alone(model, rows: list[list[dict]], flatten: bool, reference: tuple[list, float]) -> dict:
    """Largest |logit| difference of every sample, packed vs alone, and the two loss sums."""
    import torch

    from longcurate.train.loss import causal_lm_loss_sum
    from longcurate.train.packing import PackedCollator

    device = next(model.parameters()).device
    packed = to_device(PackedCollator(0, "sequence", flatten=flatten)([{"samples": r} for r in rows]), device)
    inputs = {k: v for k, v in packed.items() if k not in ("labels", "loss_weights", "num_items")}
    with torch.no_grad():
        logits = model(**inputs, use_cache=False).logits.float()
        packed_loss = float(causal_lm_loss_sum(model, packed)[0])
    want, alone_loss = reference
    worst, k, start = 0.0, 0, 0
    for r, row in enumerate(rows):
        start = start if flatten else 0  # flattened: one row of every sample in order
        for sample in row:
            n = len(sample["input_ids"])
            got = logits[0 if flatten else r, start:start + n]
            worst = max(worst, float((got - want[k]).abs().max()))
            k, start = k + 1, start + n
    return {"max_abs_logit_diff": worst, "packed_loss_sum": packed_loss, "alone_loss_sum": alone_loss,
            "loss_rel_diff": abs(packed_loss - alone_loss) / max(abs(alone_loss), 1e-12)}


def run_packing(ctx: Context) -> dict:
    """The references run alone once, with SDPA in fp32; each implementation then runs only the packed
    rows (so FlexAttention compiles for one shape: on a CPU each compile costs 10-20 s)."""
    import torch

    from longcurate.train.packing import pack

    s, device = ctx.sizes, ctx.device
    model = build_llama(s.pack_shape, device=device, dtype=torch.float32, max_positions=s.pack_row)
    samples = train_samples(12, s.pack_lengths, model.config.vocab_size, seed=3)
    rows = [[samples[i] for i in b] for b in pack([x["length"] for x in samples], s.pack_row)][:2]
    ctx.record(model=s.pack_shape, rows=[[x["length"] for x in r] for r in rows], reference="each sample alone, sdpa, fp32")
    reference = alone(model, rows)
    checks: dict[str, dict] = {}
    impls = [("sdpa", torch.float32, False), ("flex_attention", torch.float32, False)]
    if importlib.util.find_spec("flash_attn") is not None and is_cuda(device):
        impls.append(("flash_attention_2", torch.bfloat16, True))
    for impl, dtype, flatten in impls:
        model = model.to(dtype)
        model.set_attn_implementation(impl)
        figures = packed_vs_alone(model, rows, flatten, reference)
        tol = PACK_TOLERANCE[str(dtype).split(".")[-1]]
        figures.update(dtype=str(dtype).split(".")[-1], flatten=flatten,
                       equal=bool(figures["max_abs_logit_diff"] <= tol and figures["loss_rel_diff"] <= tol))
        checks[impl] = figures
        ctx.record(checks=checks)
    if not importlib.util.find_spec("flash_attn"):
        checks["flash_attention_2"] = {"skipped": "flash-attn is not installed"}
    bad = [k for k, v in checks.items() if v.get("equal") is False]
    if bad:
        raise AssertionError(f"packed rows differ from their samples alone with {bad}")
    return {"checks": checks}
