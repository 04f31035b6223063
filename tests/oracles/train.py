"""The train stage's definitions written out the plain way: the tests and benchmarks check the fast
library code (loss weighting, tokenization labels, first-fit-decreasing packing, per-rank batches)
against these, and measure what the plans cost in padding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from longcurate.train.chat import Message, apply_template, has_chat_template, render_film
from longcurate.train.loss import IGNORE
from longcurate.train.tokenize import Encoded


def reference_loss(per_sample_token_losses: Sequence[Sequence[float]], mode: str) -> float:
    """The definition: the global batch's loss from each sample's response-token losses."""
    samples = [list(s) for s in per_sample_token_losses if len(s)]
    if mode == "token":
        tokens = [x for s in samples for x in s]
        return sum(tokens) / len(tokens)
    if mode == "sequence":
        return sum(sum(s) / len(s) for s in samples) / len(samples)
    raise ValueError(f"unknown loss_weighting {mode!r}")


def encode_reference(messages: list[Message], tokenizer: Any, *, template: str = "chat") -> Encoded:
    """Labelling without offsets: tokenize every rendered prefix and diff the token counts.

    Quadratic in the number of turns and sensitive to merges at prefix boundaries; the check for
    `tokenize.encode` and the baseline of benchmarks/tokenize_bench.py."""
    def n_tokens(text: str, special: bool) -> int:
        return len(tokenizer(text, add_special_tokens=special)["input_ids"])

    if template == "chat" and has_chat_template(tokenizer):
        full = apply_template(tokenizer, messages, False)
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        labels = [IGNORE] * len(ids)
        for i, m in enumerate(messages):
            if m["role"] == "assistant":
                start = n_tokens(apply_template(tokenizer, messages[:i], True), False)
                end = n_tokens(apply_template(tokenizer, messages[:i + 1], False).rstrip(), False)
                labels[start:end] = ids[start:end]
        return Encoded(list(ids), labels, original_length=len(ids))
    r = render_film(messages, getattr(tokenizer, "eos_token", None))
    ids = tokenizer(r.text, add_special_tokens=True)["input_ids"]
    labels = [IGNORE] * len(ids)
    for a, b in r.label_spans:
        start, end = n_tokens(r.text[:a], True), n_tokens(r.text[:b], True)
        labels[start:end] = ids[start:end]
    return Encoded(list(ids), labels, original_length=len(ids))


def pack_reference(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """First-fit-decreasing, the plain O(n x bins) way (the check for `packing.pack_ffd`)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        for b, room in enumerate(free):
            if lengths[i] <= room:
                bins[b].append(i)
                free[b] -= lengths[i]
                break
        else:
            bins.append([i])
            free.append(max_tokens - lengths[i])
    return bins


def micro_batches(order: Sequence[int], per_device: int) -> list[list[int]]:
    """Cut an order into per-device micro-batches (the last may be short)."""
    return [list(order[i:i + per_device]) for i in range(0, len(order), per_device)]


def rank_batches(order: Sequence[int], per_device: int, world_size: int, rank: int) -> list[list[int]]:
    """The micro-batches rank `rank` trains on, in step order: round-robin, as accelerate shards a
    DataLoader's batches (a trailing incomplete round is left out here)."""
    batches = micro_batches(order, per_device)
    full = len(batches) - len(batches) % world_size
    return [b for j, b in enumerate(batches[:full]) if j % world_size == rank]


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
