"""What a shard scores, known before the first forward without holding any tokens.

Chunks are cut longest first by token count, and a sample that cannot be scored (too long, an empty
response, no segment for CAM) is quarantined before scoring starts, so each of the shard's samples is
tokenized once here to learn its length and whether each kind can score it; only those figures are
kept (`Unit`). Each chunk then reads its samples back from the spill file and tokenizes them again
(`ShardPlan.prepare`): the same deterministic tokenization, so the chunks, the batches and every score
are those of a run that tokenized everything up front, for twice the tokenizer's time (small next to
a forward) and the memory of one chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longcurate.core.jsonl import RejectSink
from longcurate.select.inputs import InputReject, Prepared, PromptBuilder
from longcurate.select.rejects import ShardRejects
from longcurate.select.sample_index import InputIndex
from longcurate.select.shard import ShardSpec


@dataclass(frozen=True, slots=True)
class Unit:
    """One sample a kind will score: its id, where it is spilled, its full prompt's token count."""

    id: str
    slot: int
    length: int


@dataclass
class ShardPlan:
    """Each kind's units in input order, and how to tokenize them again."""

    index: InputIndex
    builder: PromptBuilder
    units: dict[str, list[Unit]] = field(default_factory=dict)

    @classmethod
    def make(cls, index: InputIndex, builder: PromptBuilder, spec: ShardSpec, limits: dict[str, int | None],
             rejects: dict[str, RejectSink]) -> "ShardPlan":
        """Tokenize each owned sample once; each kind (`limits`: kind -> its sample limit) gets the
        parse rejects its limit meets and the tokenization rejects of its samples."""
        for kind, limit in limits.items():
            index.replay(ShardRejects(rejects[kind], spec), limit)
        plan = cls(index, builder, {kind: [] for kind in limits})
        for owned in index.owned:
            kinds = [k for k, limit in limits.items() if limit is None or owned.position < limit]
            if not kinds:
                break  # positions only grow
            sample = index.sample(owned.slot)
            try:
                p = builder.prepare(sample)
            except InputReject as e:
                for kind in kinds:
                    rejects[kind].add(e.reason, file=index.source, line=owned.line, field_name=e.field,
                                      record_id=sample.id)
                continue
            for kind in kinds:
                if kind == "cam" and not p.segment_spans:
                    n_ctx = p.context_span[1] - p.context_span[0]
                    rejects[kind].add(f"context too short: {n_ctx} tokens < one segment ({builder.segment_tokens}), "
                                      "needed for CAM", file=index.source, line=owned.line, field_name="context",
                                      record_id=sample.id)
                    continue
                plan.units[kind].append(Unit(p.id, owned.slot, len(p.input_ids)))
        return plan

    def prepare(self, units: list[Unit]) -> list[Prepared]:
        """The units' samples tokenized again (one chunk's worth)."""
        out = [self.builder.prepare(self.index.sample(u.slot)) for u in units]
        for u, p in zip(units, out):
            if len(p.input_ids) != u.length:
                raise RuntimeError(f"{u.id}: tokenized to {len(p.input_ids)} tokens, planned with {u.length}")
        return out


__all__ = ["ShardPlan", "Unit"]
