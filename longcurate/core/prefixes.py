"""Shared prompt prefixes: run the tokens that many sequences start with once, not once per sequence.

Eval asks many questions about one long context (a probe set: 8 keys in one 2K-token context; needle
haystacks that start alike), so most of each prompt is the same token ids. `group_by_prefix` finds
groups of sequences with a long common prefix; `PrefixStore` runs a prefix through the decoder once
into a KV cache (transformers' `DynamicCache`) and keeps the most recent ones under a byte budget, so
the generation of a probe and the NLL of its answer, asked by different tasks, share one prefill.
A caller copies a stored cache (`PrefixStore.batch`) and runs only each sequence's own tail on it.

Exactness: the tail attends to the same keys and values it would see in a full forward, at the same
positions, so the result is the full forward's up to floating-point rounding (other matmul shapes);
`tests/eval/test_shared_prefix.py` checks it against the one-sequence-at-a-time reference.
Models whose forward depends on the whole length (dynamic-NTK / LongRoPE scaling) or that keep a
sliding window in their cache are never given shared prefixes (`can_share_prefixes`).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

from longcurate.core.batches import plan_batches
from longcurate.core.engine import NLLResult, ScoreItem, ScoringEngine, length_dependent_rope, validate_item

MIN_SHARED_TOKENS = 64  # shorter common prefixes (a chat template's header) are not worth a cache copy
MIN_SHARED_FRACTION = 0.5  # ... nor those under half of the shortest member


@dataclass
class PrefixGroup:
    """Sequences (by index) that start with the same `shared` tokens (0: run alone, no shared prefix)."""

    shared: int
    members: list[int]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    return next((k for k in range(n) if a[k] != b[k]), n)


def group_by_prefix(seqs: Sequence[Sequence[int]], limits: Sequence[int] | None = None, *,
                    min_tokens: int = MIN_SHARED_TOKENS, min_fraction: float = MIN_SHARED_FRACTION) -> list[PrefixGroup]:
    """Groups of sequences that share a prefix of at least `min_tokens` and `min_fraction` of their
    shortest member; every other sequence is a group of its own with `shared = 0`.

    `limits[i]`: at most this many tokens of sequence i may be shared (generation keeps at least its
    last prompt token to run; an NLL keeps the row that predicts the first answer token). Greedy over
    the sequences in sorted token order, where the common prefix of a run is that of its first and
    last sequence. Deterministic; each group's members in input order, groups by their first member."""
    limits = [len(s) - 1 for s in seqs] if limits is None else list(limits)
    order = sorted(range(len(seqs)), key=lambda i: (list(seqs[i]), i))
    groups: list[PrefixGroup] = []
    run: list[int] = []
    shared = 0

    def close() -> None:
        if len(run) > 1:
            groups.append(PrefixGroup(shared, sorted(run)))
        else:
            groups.extend(PrefixGroup(0, [i]) for i in run)

    for i in order:
        if run:
            cand = min(shared, common_prefix(seqs[run[0]], seqs[i]), limits[i])
            if cand >= min_tokens and cand >= min_fraction * min(len(seqs[j]) for j in (*run, i)):
                run.append(i)
                shared = cand
                continue
            close()
        run, shared = [i], limits[i]
    close()
    return sorted(groups, key=lambda g: g.members[0])


def can_share_prefixes(model: Any) -> bool:
    """False for models whose forward over a tail would differ from the full forward: RoPE scaled by
    the sequence length, or a sliding-window cache (which drops early keys)."""
    from transformers import DynamicCache

    if length_dependent_rope(model.config):
        return False
    return not any(getattr(layer, "is_sliding", False) for layer in DynamicCache(config=model.config).layers)


def cache_kwarg(model: Any) -> str:
    """The name the model's forward takes its KV cache by: `cache` (transformers >= 5.x, where
    `past_key_values` is deprecated) or `past_key_values` (earlier 5.x)."""
    import inspect

    params = inspect.signature(model.base_model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def run_on_prefix(model: Any, input_ids: Any, cache: Any, prefix_len: int):
    """The decoder over `input_ids` (the tails) after the `prefix_len` tokens held in `cache`; its
    last hidden states. Checks that the forward really used the cache (a model that ignored it would
    score the tails without their context, silently)."""
    out = model.base_model(input_ids=input_ids, use_cache=True, **{cache_kwarg(model): cache})
    if cache.get_seq_length() != prefix_len + input_ids.shape[1]:
        raise RuntimeError(f"{type(model).__name__}: the forward did not extend the given KV cache "
                           f"({cache.get_seq_length()} tokens, expected {prefix_len + input_ids.shape[1]})")
    return out.last_hidden_state


def cache_bytes(cache: Any) -> int:
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values)
               if t is not None)


class PrefixStore:
    """Prefix KV caches of one model, most recently used kept under `max_bytes` (a prefix larger than
    that is computed for its group and not kept)."""

    def __init__(self, model: Any, max_bytes: int = 1 << 30):
        self.model = model
        self.max_bytes = max_bytes
        self._caches: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.hits = 0
        self.prefills = 0

    def get(self, prefix: Sequence[int]) -> Any:
        """The KV cache after `prefix` (one sequence), from the store or computed now."""
        key = tuple(prefix)
        if key in self._caches:
            self._caches.move_to_end(key)
            self.hits += 1
            return self._caches[key]
        cache = self._prefill(key)
        self.prefills += 1
        size = cache_bytes(cache)
        if size <= self.max_bytes:
            self._caches[key] = cache
            while sum(cache_bytes(c) for c in self._caches.values()) > self.max_bytes:
                self._caches.popitem(last=False)
        return cache

    def batch(self, prefix: Sequence[int], rows: int) -> Any:
        """A copy of the prefix's cache for `rows` sequences (the forward that uses it appends to it)."""
        cache = copy.deepcopy(self.get(prefix))
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        return cache

    def _prefill(self, prefix: tuple[int, ...]) -> Any:
        import torch
        from transformers import DynamicCache

        device = next(self.model.parameters()).device
        cache = DynamicCache(config=self.model.config)
        with torch.no_grad():  # not inference_mode: its tensors could not be copied outside it
            run_on_prefix(self.model, torch.tensor([prefix], dtype=torch.long, device=device), cache, 0)
        return cache


def shared_response_nll(engine: ScoringEngine, items: list[ScoreItem], store: PrefixStore,
                        progress: bool = True) -> list[NLLResult]:
    """`engine.response_nll(items)`, with the prefix each group of items shares run once (`store`):
    the items that share none go through the engine as they are; each group's tails run in
    right-padded batches on copies of its prefix's cache, under the engine's token budget counted as
    rows x (prefix + longest tail) (the repeated cache is that big). Same order as `items`."""
    import torch
    from tqdm.auto import tqdm

    if not can_share_prefixes(engine.model):
        return engine.response_nll(items)
    for it in items:
        validate_item(it)
    groups = group_by_prefix([it.input_ids for it in items], [it.response_start - 1 for it in items])
    out: list[NLLResult | None] = [None] * len(items)
    alone = [i for g in groups if not g.shared for i in g.members]
    for i, res in zip(alone, engine.response_nll([items[i] for i in alone]) if alone else []):
        out[i] = res
    shared = [g for g in groups if g.shared]
    with torch.inference_mode(), tqdm(total=sum(len(g.members) for g in shared), desc="response nll (shared prefixes)",
                                      unit="sample", disable=not progress or not shared, leave=False) as bar:
        for g in shared:
            prefix = items[g.members[0]].input_ids[:g.shared]
            lengths = [len(items[i]) for i in g.members]
            for batch in plan_batches(lengths, engine.batch_tokens, engine.max_batch_size):
                idx = [g.members[k] for k in batch]
                group = [items[i] for i in idx]
                ids = engine.pad(group, offset=g.shared)
                hidden = run_on_prefix(engine.model, ids, store.batch(prefix, len(group)), g.shared)
                for i, s in zip(idx, engine.response_sums(hidden, ids, group, offset=g.shared)):
                    out[i] = NLLResult(items[i].id, s, len(items[i]) - items[i].response_start)
                bar.update(len(batch))
    return out  # type: ignore[return-value]


__all__ = ["shared_response_nll", "PrefixGroup", "PrefixStore", "common_prefix", "group_by_prefix", "can_share_prefixes", "cache_bytes",
           "cache_kwarg", "run_on_prefix",
           "MIN_SHARED_TOKENS", "MIN_SHARED_FRACTION"]
