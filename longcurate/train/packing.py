"""Packing: many samples in one row of `max_tokens`, each sample kept to itself.

Boundaries are carried by `position_ids` that restart at 0 for every sample:
- flash-attn 2 (when installed, on CUDA): the micro-batch is flattened into one row and the varlen
  kernel gets `cu_seq_lens_q/k` + `max_length_q/k` (the `DataCollatorWithFlattening` format);
- SDPA / eager: rows are right-padded, no 2-D attention mask is passed, and transformers 5's
  `masking_utils.find_packed_sequence_indices` turns the restarting position ids into a
  block-diagonal causal mask (a public, documented behaviour of `create_causal_mask`).
The padding tail of a row is its own "sequence" (positions restart) with labels -100.
The first token of every sample gets label -100: nothing before it in the row may predict it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from longcurate.core.errors import UserError
from longcurate.train.config import PACKINGS


def pack_ffd(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """First-fit-decreasing in O(n log n): a max segment tree over the bins' free space finds the
    first bin with room. Same bins, in the same order, as the plain O(n x bins) first-fit-decreasing."""
    _check(lengths, max_tokens)
    n = len(lengths)
    if n == 0:
        return []
    order = sorted(range(n), key=lambda i: (-lengths[i], i))
    size = 1
    while size < n:
        size *= 2
    tree = [-1] * (2 * size)  # max free space per subtree; -1 = no bin opened there yet
    bins: list[list[int]] = []

    def update(b: int, room: int) -> None:
        k = b + size
        tree[k] = room
        k //= 2
        while k:
            tree[k] = max(tree[2 * k], tree[2 * k + 1])
            k //= 2

    for i in order:
        need = lengths[i]
        if tree[1] >= need:
            k = 1
            while k < size:  # descend to the leftmost leaf with enough room
                k = 2 * k if tree[2 * k] >= need else 2 * k + 1
            b = k - size
            bins[b].append(i)
            update(b, tree[k] - need)
        else:
            bins.append([i])
            update(len(bins) - 1, max_tokens - need)
    return bins


def pack_greedy(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Next-fit in decreasing-length order: fill a row, open the next when a sample does not fit."""
    _check(lengths, max_tokens)
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room = -1
    for i in order:
        if lengths[i] > room:
            bins.append([])
            room = max_tokens
        bins[-1].append(i)
        room -= lengths[i]
    return bins


def pack(lengths: Sequence[int], max_tokens: int, strategy: str = "ffd") -> list[list[int]]:
    if strategy == "ffd":
        return pack_ffd(lengths, max_tokens)
    if strategy == "greedy":
        return pack_greedy(lengths, max_tokens)
    raise UserError(f"unknown packing {strategy!r}; expected one of {PACKINGS}")


def _check(lengths: Sequence[int], max_tokens: int) -> None:
    if max_tokens < 1:
        raise UserError("max_tokens must be >= 1")
    longest = max(lengths, default=0)
    if longest > max_tokens:
        i = list(lengths).index(longest)
        raise UserError(f"sample #{i} has {longest} tokens > max_tokens={max_tokens}; "
                         "set train.max_tokens >= tokenize.max_length")
    if min(lengths, default=1) < 1:
        raise UserError("every sample needs at least one token")


def fill_fraction(lengths: Sequence[int], bins: Sequence[Sequence[int]], max_tokens: int) -> float:
    """Share of the rows' `max_tokens` slots that hold real tokens."""
    slots = len(bins) * max_tokens
    return sum(lengths[i] for b in bins for i in b) / slots if slots else 1.0


@dataclass
class PackedRows:
    """A torch map-style dataset (duck-typed) whose items are packed rows: lists of samples."""

    dataset: Any  # a datasets.Dataset (or list of dicts) with input_ids and labels
    bins: list[list[int]]

    def __len__(self) -> int:
        return len(self.bins)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"samples": [self.dataset[j] for j in self.bins[i]]}


def row_position_ids(lengths: Sequence[int]) -> list[int]:
    """Positions that restart at 0 for each sample of a row."""
    return [p for n in lengths for p in range(n)]


def cu_seqlens(lengths: Sequence[int]) -> list[int]:
    out = [0]
    for n in lengths:
        out.append(out[-1] + n)
    return out


class PackedCollator:
    """Collates packed rows (items of `PackedRows`) into model inputs with per-sample boundaries.

    `flatten=True` (flash-attn varlen): one row [1, total] plus `cu_seq_lens_q/k`, `max_length_q/k`.
    `flatten=False` (SDPA / eager): rows right-padded to the longest, `position_ids` restarting per
    sample and no attention mask, so transformers builds the block-diagonal causal mask."""

    def __init__(self, pad_token_id: int, loss_weighting: str = "sequence", flatten: bool = False):
        self.pad_token_id = int(pad_token_id)
        self.loss_weighting = loss_weighting
        self.flatten = flatten

    def _row(self, samples: list[dict]) -> tuple[list[int], list[int], list[float], list[int], int]:
        from longcurate.train.loss import IGNORE, sample_weights

        ids, labels, weights, lengths = [], [], [], []
        items = 0
        for s in samples:
            lab = [IGNORE] + list(s["labels"])[1:]  # never predicted from the previous sample
            w, k = sample_weights(lab, self.loss_weighting)
            items += k
            ids += list(s["input_ids"])
            labels += lab
            weights += w
            lengths.append(len(lab))
        return ids, labels, weights, lengths, items

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        from longcurate.train.loss import IGNORE

        built = [self._row(r["samples"]) for r in rows]
        items = sum(b[4] for b in built)
        if self.flatten:
            lengths = [n for b in built for n in b[3]]
            ids = [t for b in built for t in b[0]]
            out = {"input_ids": torch.tensor([ids], dtype=torch.long),
                   "labels": torch.tensor([[t for b in built for t in b[1]]], dtype=torch.long),
                   "loss_weights": torch.tensor([[t for b in built for t in b[2]]], dtype=torch.float32),
                   "position_ids": torch.tensor([row_position_ids(lengths)], dtype=torch.long)}
            cu = torch.tensor(cu_seqlens(lengths), dtype=torch.int32)
            out.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=max(lengths), max_length_k=max(lengths))
        else:
            width = max(len(b[0]) for b in built)
            ids, labels, weights, positions = [], [], [], []
            for b_ids, b_lab, b_w, b_len, _ in built:
                pad = width - len(b_ids)
                ids.append(b_ids + [self.pad_token_id] * pad)
                labels.append(b_lab + [IGNORE] * pad)
                weights.append(b_w + [0.0] * pad)
                positions.append(row_position_ids(list(b_len) + ([pad] if pad else [])))
            out = {"input_ids": torch.tensor(ids, dtype=torch.long),
                   "labels": torch.tensor(labels, dtype=torch.long),
                   "loss_weights": torch.tensor(weights, dtype=torch.float32),
                   "position_ids": torch.tensor(positions, dtype=torch.long)}
        out["num_items"] = torch.tensor(items, dtype=torch.long)
        return out
