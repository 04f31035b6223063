"""What budgets and diagnostics read of the samples, in one streaming pass each, never the whole pool.

- `ChosenRecords`: the budget files' samples (a few thousand of a pool of any size) copied out of the
  input into a spill file as the JSON lines the budget files hold; the files are then written in
  each method's order from there.
- `sample_facts`: each sample's `kind` and whether it has gold spans (the diagnostics' labels);
  `sample_lengths`: its `length` field (the `length` order for samples the scores hold no token count for).

The input's bad lines were quarantined when it was scored, so they are passed over here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from longcurate.core.errors import UserError
from longcurate.core.jsonl import DiscardRejects, dumps
from longcurate.core.spill import RecordSpill
from longcurate.select.conversations import SampleReading
from longcurate.select.inputs import iter_samples


class ChosenRecords(Mapping):
    """id -> the sample's JSON line (as `Sample.to_dict` writes it), for the ids asked for."""

    def __init__(self, spill: RecordSpill, slots: dict[str, int]):
        self.spill = spill
        self.slots = slots

    @classmethod
    def collect(cls, path: str | Path, wanted: set[str], ranked: Sequence[str], beside: Path,
                allow_download: bool = False, reading: SampleReading | None = None) -> "ChosenRecords":
        """One pass over the input (read as `reading` says): the `wanted` samples spilled beside
        `beside`; a `ranked` id the input does not hold is a UserError (the ranking belongs to another
        input)."""
        spill = RecordSpill(beside)
        slots: dict[str, int] = {}
        found: set[str] = set()
        ranked_ids = set(ranked)
        try:
            for _, sample in iter_samples(path, DiscardRejects(), allow_download=allow_download, reading=reading):
                if sample.id in ranked_ids:
                    found.add(sample.id)
                if sample.id in wanted:
                    slots[sample.id] = spill.add(dumps(sample.to_dict()).encode("utf-8"))
            missing = [i for i in ranked if i not in found]
            if missing:
                raise UserError(f"{len(missing)} ranked id(s) are not in the samples file, e.g. {missing[:5]}")
        except BaseException:
            spill.close()
            raise
        return cls(spill, slots)

    def __getitem__(self, rid: str) -> str:
        return self.spill.get(self.slots[rid]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return iter(self.slots)

    def __len__(self) -> int:
        return len(self.slots)

    def close(self) -> None:
        self.spill.close()


@dataclass
class SampleFacts:
    """Per sample id its kind; and the ids that have gold spans."""

    kinds: dict[str, str] = field(default_factory=dict)
    gold: set[str] = field(default_factory=set)


def sample_facts(path: str | Path, allow_download: bool = False, reading: SampleReading | None = None) -> SampleFacts:
    """The kind and gold flag of every valid sample of the input, from one streaming pass."""
    facts = SampleFacts()
    for _, s in iter_samples(path, DiscardRejects(), allow_download=allow_download, reading=reading):
        facts.kinds[s.id] = s.kind
        if s.gold:
            facts.gold.add(s.id)
    return facts


def sample_lengths(path: str | Path, allow_download: bool = False,
                   reading: SampleReading | None = None) -> dict[str, int | None]:
    """Every valid sample's own `length` field (None where the input has none), from one streaming pass."""
    return {s.id: s.length for _, s in iter_samples(path, DiscardRejects(), allow_download=allow_download,
                                                    reading=reading)}


__all__ = ["ChosenRecords", "SampleFacts", "sample_facts", "sample_lengths"]
