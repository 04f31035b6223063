"""Which samples train together: naive (random) or sorted (LongAlign) order over the `length` column,
or packed rows (packing.py), and the `Plan` the Trainer's DataLoader reads.

One optimiser step consumes `global_batch` = per-device batch x grad-accum x world size consecutive
indices of the order. accelerate hands the per-device micro-batches out round-robin (micro-batch j goes
to rank j % world), so `world x per-device` consecutive indices are one micro-step across the ranks.

Sorted batching, as LongAlign's `sort_and_group.py` (and GATEAU, which reuses it) releases it: sort by
length, cut groups of `world x per-device` samples (one micro-step; the release's `--group_size` = the
number of GPUs at per-device batch 1) and shuffle the groups, so each micro-step pads little while
gradient accumulation mixes `grad_accum` length groups in one optimiser step (`sort_group: micro`, the
default). `sort_group: global` cuts groups of the whole global batch instead, so every optimiser step is
uniform in length: the least padding, and the strongest form of the length bias LongAlign warns about.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from longcurate.core.errors import UserError
from longcurate.train.config import BATCHINGS
from longcurate.train.packing import PackedCollator, PackedRows, fill_fraction, pack


def global_batch_size(per_device: int, grad_accum: int, world_size: int) -> int:
    if min(per_device, grad_accum, world_size) < 1:
        raise UserError(f"batch sizes must be >= 1 (per_device={per_device}, grad_accum={grad_accum}, "
                         f"world_size={world_size})")
    return per_device * grad_accum * world_size


def _rng(seed: int, epoch: int) -> random.Random:
    # A string seed is hashed deterministically (sha512), independent of PYTHONHASHSEED.
    return random.Random(f"longcurate-batching:{seed}:{epoch}")


def naive_order(n: int, seed: int = 0, epoch: int = 0) -> list[int]:
    """A random permutation of range(n), reproducible from (seed, epoch)."""
    order = list(range(n))
    _rng(seed, epoch).shuffle(order)
    return order


def sort_group_size(sort_group: str, per_device: int, grad_accum: int, world_size: int) -> int:
    """Samples per length group: one micro-step across the ranks (`micro`, the release) or one
    optimiser step (`global`)."""
    return {"micro": per_device * world_size,  # `train.config.SORT_GROUPS`
            "global": global_batch_size(per_device, grad_accum, world_size)}[sort_group]


def sorted_order(lengths: Sequence[int], group_size: int, seed: int = 0, epoch: int = 0) -> list[int]:
    """LongAlign's sort-cut-shuffle: sort by length (ties by index), cut groups of `group_size`,
    shuffle the groups (not their contents) by (seed, epoch). The release drops the last, incomplete
    group (its longest samples); here it is kept and goes last."""
    if group_size < 1:
        raise UserError("the sorted-batching group size must be >= 1")
    by_length = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    full = len(by_length) - len(by_length) % group_size
    groups = [by_length[i:i + group_size] for i in range(0, full, group_size)]
    _rng(seed, epoch).shuffle(groups)
    return [i for g in groups for i in g] + by_length[full:]


def make_order(mode: str, lengths: Sequence[int], group_size: int, seed: int = 0, epoch: int = 0) -> list[int]:
    if mode == "naive":
        return naive_order(len(lengths), seed, epoch)
    if mode == "sorted":
        return sorted_order(lengths, group_size, seed, epoch)
    raise UserError(f"unknown batching {mode!r}; expected one of {BATCHINGS}")


def step_groups(order: Sequence[int], global_batch: int) -> list[list[int]]:
    """The samples of each optimizer step (global batch)."""
    return [list(order[i:i + global_batch]) for i in range(0, len(order), global_batch)]


class LengthSampler:
    """A torch Sampler (duck-typed: `__iter__`, `__len__`, `set_epoch`) yielding the naive or sorted
    order (`group_size`: sorted batching's group). Not rank-aware on purpose: accelerate shards its
    batches over ranks."""

    def __init__(self, lengths: Sequence[int], mode: str, group_size: int, seed: int = 0):
        if mode not in ("naive", "sorted"):
            raise UserError(f"LengthSampler mode must be naive or sorted, got {mode!r}")
        self.lengths = list(lengths)
        self.mode = mode
        self.group_size = group_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> list[int]:
        return make_order(self.mode, self.lengths, self.group_size, self.seed,
                          self.epoch if epoch is None else epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order())

    def __len__(self) -> int:
        return len(self.lengths)


class PaddedCollator:
    """Right-pads a micro-batch of tokenized samples (naive / sorted batching) and adds the loss
    weights (`loss.sample_weights`) and the micro-batch's item count."""

    def __init__(self, pad_token_id: int, loss_weighting: str = "sequence", pad_to_multiple_of: int = 1):
        self.pad_token_id = int(pad_token_id)
        self.loss_weighting = loss_weighting
        self.pad_to_multiple_of = max(1, pad_to_multiple_of)

    def __call__(self, features: list[dict]) -> dict:
        import torch

        from longcurate.train.loss import IGNORE, sample_weights

        longest = max(len(f["input_ids"]) for f in features)
        m = self.pad_to_multiple_of
        width = (longest + m - 1) // m * m
        ids, labels, weights, mask = [], [], [], []
        items = 0
        for f in features:
            n = len(f["input_ids"])
            pad = width - n
            lab = list(f["labels"])
            w, k = sample_weights(lab, self.loss_weighting)
            items += k
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            labels.append(lab + [IGNORE] * pad)
            weights.append(w + [0.0] * pad)
            mask.append([1] * n + [0] * pad)
        return {"input_ids": torch.tensor(ids, dtype=torch.long),
                "attention_mask": torch.tensor(mask, dtype=torch.long),
                "labels": torch.tensor(labels, dtype=torch.long),
                "loss_weights": torch.tensor(weights, dtype=torch.float32),
                "num_items": torch.tensor(items, dtype=torch.long)}


@dataclass
class Plan:
    """What each optimizer step trains on: the dataset the DataLoader reads, its sampler and collator."""

    train_dataset: Any
    sampler: LengthSampler
    collator: Any
    global_batch: int
    bins: list[list[int]] | None = None  # packed: sample indices per row
    stats: dict[str, Any] = field(default_factory=dict)

    def samples_of_steps(self, steps: int, epochs: int) -> list[int]:
        """Sample indices of the first `steps` global batches (the plan is deterministic by seed)."""
        out: list[int] = []
        done = 0
        for epoch in range(max(1, epochs)):
            for group in step_groups(self.sampler.order(epoch), self.global_batch):
                if done >= steps:
                    return out
                out += [j for g in group for j in self.bins[g]] if self.bins is not None else group
                done += 1
        return out


def make_plan(ds, *, batching: str, loss_weighting: str, per_device: int, grad_accum: int, world_size: int,
              seed: int, pad_token_id: int, max_tokens: int = 8192, packing: str = "ffd",
              flatten: bool = False, lengths: list[int] | None = None, sort_group: str = "micro") -> Plan:
    """The plan of `batching` over `ds`. `lengths`: the `length` column already read (else read here);
    `flatten`: packed rows in flash-attn's one-row format; `sort_group`: sorted batching's groups."""
    gb = global_batch_size(per_device, grad_accum, world_size)
    lengths = [int(x) for x in (ds["length"][:] if lengths is None else lengths)]
    if batching == "packed":
        bins = pack(lengths, max_tokens, packing)
        rows = PackedRows(ds, bins)
        sampler = LengthSampler([sum(lengths[i] for i in b) for b in bins], "naive", gb, seed)
        fill = fill_fraction(lengths, bins, max_tokens)
        return Plan(rows, sampler, PackedCollator(pad_token_id, loss_weighting, flatten=flatten), gb, bins,
                    {"rows": len(bins), "max_tokens": max_tokens, "fill": round(fill, 4)})
    group = sort_group_size(sort_group, per_device, grad_accum, world_size)
    sampler = LengthSampler(lengths, batching, group, seed)
    stats = {"sort_group": sort_group, "group_size": group} if batching == "sorted" else {}
    return Plan(ds, sampler, PaddedCollator(pad_token_id, loss_weighting), gb, stats=stats)
