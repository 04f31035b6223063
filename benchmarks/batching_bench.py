"""Batching benchmark: padding of naive / sorted / packed plans on a 1K-16K mixture; sorted batching's
two groupings per optimiser step (padding and length spread); training throughput (real tokens/s) of
sorted vs naive batching on a tiny model, measured in the same process.

    .venv/bin/python benchmarks/batching_bench.py [--samples 2000] [--steps 12]

Sorted groupings: `micro` (LongAlign's release, the default: groups of world x per-device samples,
shuffled, so gradient accumulation mixes lengths in a step) and `global` (one group per optimiser step).
Per step: padding = padded slots / all slots over the step's micro-batches (each rank pads its own
micro-batch); spread = longest / shortest sample of the step, and the coefficient of variation.

Targets: sorted padding <= 5%, packed padding <= 2%, sorted >= 1.5x naive tokens/s.
"""

from __future__ import annotations

import argparse
import random
import time
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]  # the package; test oracles


def mixture_lengths(n: int, lo: int, hi: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(lo, hi) for _ in range(n)]


def padding_report(lengths: list[int], per_device: int, grad_accum: int, max_tokens: int) -> dict[str, float]:
    from longcurate.train.batching import global_batch_size, naive_order, sorted_order
    from longcurate.train.packing import fill_fraction, pack
    from oracles.train import micro_batches, padding_stats

    gb = global_batch_size(per_device, grad_accum, 1)
    naive = padding_stats(lengths, micro_batches(naive_order(len(lengths), 0), per_device)).padding_fraction
    sort = padding_stats(lengths, micro_batches(sorted_order(lengths, gb, 0), per_device)).padding_fraction
    bins = pack(lengths, max_tokens, "ffd")
    packed = 1.0 - fill_fraction(lengths, bins, max_tokens)
    greedy = 1.0 - fill_fraction(lengths, pack(lengths, max_tokens, "greedy"), max_tokens)
    return {"naive": naive, "sorted": sort, "packed_ffd": packed, "packed_greedy": greedy, "rows": len(bins)}


def step_report(lengths: list[int], per_device: int, grad_accum: int, world: int, sort_group: str,
                seed: int = 0) -> dict[str, float]:
    """Padding and length spread per optimiser step of sorted batching with `sort_group`."""
    import statistics

    from longcurate.train.batching import global_batch_size, sort_group_size, sorted_order, step_groups
    from oracles.train import micro_batches, padding_stats

    gb = global_batch_size(per_device, grad_accum, world)
    order = sorted_order(lengths, sort_group_size(sort_group, per_device, grad_accum, world), seed)
    steps = [g for g in step_groups(order, gb) if len(g) == gb]
    pads, ratios, cvs = [], [], []
    for g in steps:
        pads.append(padding_stats(lengths, micro_batches(g, per_device)).padding_fraction)
        ls = [lengths[i] for i in g]
        ratios.append(max(ls) / min(ls))
        cvs.append(statistics.pstdev(ls) / statistics.fmean(ls))
    return {"padding": statistics.fmean(pads), "max_over_min": statistics.fmean(ratios),
            "cv": statistics.fmean(cvs), "steps": len(steps)}


def throughput(lengths: list[int], mode: str, per_device: int, steps: int, seed: int = 0) -> float:
    """Real (non-padding) tokens per second of forward + backward with the training collator and loss."""
    import torch

    from longcurate.train.batching import PaddedCollator, naive_order, sorted_order
    from longcurate.train.loss import causal_lm_loss_sum
    from oracles.models import random_llama
    from oracles.train import micro_batches

    rng = random.Random(seed)
    samples = []
    for n in lengths:
        ids = [rng.randrange(3, 1024) for _ in range(n)]
        resp = max(1, n // 8)
        samples.append({"input_ids": ids, "labels": [-100] * (n - resp) + ids[n - resp:]})
    order = naive_order(len(lengths), seed) if mode == "naive" else sorted_order(lengths, per_device, seed)
    batches = micro_batches(order, per_device)[:steps]
    torch.manual_seed(seed)
    model = random_llama(seed=0, vocab_size=1024, hidden_size=384, num_layers=2, intermediate_size=1024).train()
    collate = PaddedCollator(0, "sequence")
    warm = collate([samples[i] for i in batches[0]])
    causal_lm_loss_sum(model, warm)[0].backward()
    real, t0 = 0, time.perf_counter()
    for b in batches:
        batch = collate([samples[i] for i in b])
        loss, _ = causal_lm_loss_sum(model, batch)
        loss.backward()
        model.zero_grad(set_to_none=True)
        real += int(batch["attention_mask"].sum())
    return real / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=12, help="micro-batches timed per mode")
    ap.add_argument("--per-device", type=int, default=8)
    a = ap.parse_args()

    lengths = mixture_lengths(a.samples, 1024, 16384)
    for max_tokens in (16384, 32768):
        r = padding_report(lengths, a.per_device, 4, max_tokens)
        print(f"padding, {a.samples} samples of 1K-16K, micro-batch {a.per_device}, packed rows of {max_tokens}: "
              f"naive {r['naive']:.1%}  sorted {r['sorted']:.2%}  packed(ffd) {r['packed_ffd']:.2%}  "
              f"packed(greedy) {r['packed_greedy']:.2%}  ({r['rows']} rows)")
    # Sorted batching's groupings, per optimiser step: LongAlign's 7B setting (8 GPUs x batch 1, grad-accum 12)
    # and a per-device batch of 2 (where micro-batches pad).
    for per_device, ga, world in ((1, 12, 8), (2, 6, 8), (2, 4, 1)):
        rows = {g: step_report(lengths, per_device, ga, world, g) for g in ("micro", "global")}
        print(f"sorted, {world} GPU(s) x batch {per_device} x grad-accum {ga} ({rows['micro']['steps']} steps): " + "  ".join(
            f"{g}: padding {r['padding']:.2%}, longest/shortest {r['max_over_min']:.2f}, cv {r['cv']:.3f}"
            for g, r in rows.items()))
    # Throughput on the same 1:16 length spread, scaled down so a tiny model runs it on a laptop CPU.
    # Both modes run the same samples (one epoch), so the ratio is the time saved on the same work.
    small = mixture_lengths(a.per_device * a.steps, 64, 1024, seed=1)
    naive = throughput(small, "naive", a.per_device, a.steps)
    sort = throughput(small, "sorted", a.per_device, a.steps)
    print(f"training tokens/s (tiny Llama, lengths 64-1024, micro-batch {a.per_device}): naive {naive:,.0f}  "
          f"sorted {sort:,.0f}  ratio {sort / naive:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
