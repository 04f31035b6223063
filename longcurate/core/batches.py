"""Length-sorted batches under a padded-token budget, shared by the scoring engine and generation."""

from __future__ import annotations

from typing import Hashable, Sequence


def plan_batches(lengths: Sequence[int], batch_tokens: int, max_batch_size: int,
                 same_length: bool = False, groups: Sequence[Hashable] | None = None) -> list[list[int]]:
    """Indices grouped into batches: longest first (an out-of-memory shows up at once), each batch
    holding at most `max_batch_size` rows and at most `batch_tokens` padded tokens (rows x its
    longest row). A single item longer than the budget gets a batch of its own.

    `groups`: only items of one group share a batch (e.g. generation requests with the same number
    of new tokens); groups come one after another in sorted order, each longest first.
    `same_length` batches only items of equal length (needed when the padded length changes the
    result, as with dynamic-NTK RoPE). Deterministic: ties keep input order."""
    if batch_tokens < 1 or max_batch_size < 1:
        raise ValueError("batch_tokens and max_batch_size must be >= 1")
    if groups is not None and len(groups) != len(lengths):
        raise ValueError("groups must hold one key per length")
    if same_length:
        groups = [(-n, g) for n, g in zip(lengths, groups or [None] * len(lengths))]
    key = (lambda i: (groups[i], -lengths[i], i)) if groups is not None else (lambda i: (-lengths[i], i))
    order = sorted(range(len(lengths)), key=key)
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = lengths[cur[0]] if cur else lengths[i]
        if cur and (len(cur) + 1 > max_batch_size or (len(cur) + 1) * longest > batch_tokens
                    or (groups is not None and groups[i] != groups[cur[0]])):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches
