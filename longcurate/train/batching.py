"""Which samples train together: naive (random) or sorted (LongAlign) order over the `length` column,
the per-rank micro-batches of a plan, and how much of a plan is padding.

The order is over the whole dataset, for the GLOBAL batch (per-device batch x grad-accum x world
size): one optimizer step consumes `global_batch` consecutive indices. accelerate hands the
per-device micro-batches of that run out round-robin (micro-batch j goes to rank j % world), which
`rank_batches` reproduces, so a global batch of the sorted plan holds samples of similar length on
every rank.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

BATCHINGS = ("naive", "sorted", "packed")


def global_batch_size(per_device: int, grad_accum: int, world_size: int) -> int:
    if min(per_device, grad_accum, world_size) < 1:
        raise ValueError(f"batch sizes must be >= 1 (per_device={per_device}, grad_accum={grad_accum}, "
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


def sorted_order(lengths: Sequence[int], global_batch: int, seed: int = 0, epoch: int = 0) -> list[int]:
    """LongAlign sorted batching: sort by length (ties by index), cut into groups of the global batch,
    shuffle the groups (not their contents) by seed; an incomplete group (the longest samples) is last."""
    if global_batch < 1:
        raise ValueError("global_batch must be >= 1")
    by_length = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    full = len(by_length) - len(by_length) % global_batch
    groups = [by_length[i:i + global_batch] for i in range(0, full, global_batch)]
    _rng(seed, epoch).shuffle(groups)
    # The short remainder goes last, so every optimizer step stays one group of neighbours in length.
    return [i for g in groups for i in g] + by_length[full:]


def make_order(mode: str, lengths: Sequence[int], global_batch: int, seed: int = 0, epoch: int = 0) -> list[int]:
    if mode == "naive":
        return naive_order(len(lengths), seed, epoch)
    if mode == "sorted":
        return sorted_order(lengths, global_batch, seed, epoch)
    raise ValueError(f"unknown batching {mode!r} for an index order; expected naive or sorted")


def micro_batches(order: Sequence[int], per_device: int) -> list[list[int]]:
    """Cut an order into per-device micro-batches (the last may be short)."""
    return [list(order[i:i + per_device]) for i in range(0, len(order), per_device)]


def rank_batches(order: Sequence[int], per_device: int, world_size: int, rank: int) -> list[list[int]]:
    """The micro-batches rank `rank` trains on, in step order (round-robin, as accelerate shards a
    DataLoader's batches; a trailing incomplete round is left out here)."""
    batches = micro_batches(order, per_device)
    full = len(batches) - len(batches) % world_size
    return [b for j, b in enumerate(batches[:full]) if j % world_size == rank]


def step_groups(order: Sequence[int], global_batch: int) -> list[list[int]]:
    """The samples of each optimizer step (global batch)."""
    return [list(order[i:i + global_batch]) for i in range(0, len(order), global_batch)]


@dataclass(frozen=True)
class PaddingStats:
    real_tokens: int
    slot_tokens: int  # tokens computed: each micro-batch padded to its longest row

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.real_tokens / self.slot_tokens if self.slot_tokens else 0.0

    def as_dict(self) -> dict:
        return {"real_tokens": self.real_tokens, "slot_tokens": self.slot_tokens,
                "padding_fraction": round(self.padding_fraction, 6)}


def padding_stats(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> PaddingStats:
    """Padding of a plan where every micro-batch is right-padded to its longest sample."""
    real = slots = 0
    for b in batches:
        if not b:
            continue
        ls = [lengths[i] for i in b]
        real += sum(ls)
        slots += max(ls) * len(ls)
    return PaddingStats(real, slots)


class LengthSampler:
    """A torch Sampler (duck-typed: `__iter__`, `__len__`, `set_epoch`) yielding the naive or sorted
    global order. Not rank-aware on purpose: accelerate shards its batches over ranks."""

    def __init__(self, lengths: Sequence[int], mode: str, global_batch: int, seed: int = 0):
        if mode not in ("naive", "sorted"):
            raise ValueError(f"LengthSampler mode must be naive or sorted, got {mode!r}")
        self.lengths = list(lengths)
        self.mode = mode
        self.global_batch = global_batch
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> list[int]:
        return make_order(self.mode, self.lengths, self.global_batch, self.seed,
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
