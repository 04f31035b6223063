"""The scored pool as other commands read it (an ablation picks its arms from it): the ranked records,
the samples they rank, and each sample's token counts as select measured them, so a reader never opens
select's score files or spells their fields.

The samples are read in one streaming pass into a spill file (`core.spill`) beside the ranked file and
read back one at a time by id, so memory holds the ranked figures and 8 bytes a sample, never the
texts of the pool.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.core.records import Sample, is_count
from longcurate.core.spill import RecordSpill

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun


class PooledSamples(Mapping[str, Sample]):
    """The input's samples by id, on disk: each read back (one seek, unpickled) when asked for, in the
    input's order when iterated. The spill file is our own, written in this process."""

    def __init__(self, spill: RecordSpill, slots: dict[str, int]):
        self._spill = spill
        self._slots = slots

    @classmethod
    def spill(cls, samples: Iterator[Sample], beside: Path) -> "PooledSamples":
        spill = RecordSpill(beside)
        slots: dict[str, int] = {}
        try:
            for sample in samples:
                slots[sample.id] = spill.add(pickle.dumps(sample, protocol=pickle.HIGHEST_PROTOCOL))
        except BaseException:
            spill.close()
            raise
        return cls(spill, slots)

    def __getitem__(self, sample_id: str) -> Sample:
        return pickle.loads(self._spill.get(self._slots[sample_id]))

    def __contains__(self, sample_id: object) -> bool:  # without reading the sample back
        return sample_id in self._slots

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)


@dataclass(frozen=True)
class ScoredPool:
    """`ranked`: the ranked records, best first, with the figures the orders read (`id`, `hmg`, `cas`,
    `ifd`, `perplexity`, `n_tokens`: `select.stage.RANKED_FIGURES`); `samples` by id (on disk);
    `lengths`: prompt + response tokens as θ_B scored them (what the `length` order reads: the ranked
    record's `n_tokens`, else the HMG file's, else the sample's own `length`; absent where none says);
    `response_tokens`: the response tokens θ_B
    scored (None where the HMG file has no usable count)."""

    ranked: list[dict[str, Any]]
    samples: Mapping[str, Sample]
    lengths: dict[str, int]
    response_tokens: dict[str, int | None]


def scored_pool(cfg: SelectRun) -> ScoredPool:
    """The run's ranked pool (`select rank`'s output) with its samples (on disk: `PooledSamples`) and
    token counts, the samples read in one pass (the input's bad lines were quarantined when it was
    scored; not again here)."""
    from longcurate.core.jsonl import DiscardRejects
    from longcurate.select.inputs import iter_samples
    from longcurate.select.shard import iter_scores
    from longcurate.select.stage import read_ranked
    from longcurate.select.steps import input_path, sample_reading

    layout = cfg.layout()
    if not layout.ranked.exists():
        raise UserError(f"{layout.ranked}: no ranked pool (run `longcurate select` first)")
    ranked = read_ranked(layout.ranked)  # the figures the orders read, not whole records
    # The HMG file's counts only: (prompt + response tokens, response tokens), None where not a count.
    hmg = {str(r["id"]): tuple(int(r[k]) if is_count(r.get(k)) else None for k in ("n_tokens", "n_response_tokens"))
           for r in iter_scores(layout.score("hmg"))} if layout.score("hmg").exists() else {}
    carried = {str(r["id"]): int(r["n_tokens"]) for r in ranked if is_count(r.get("n_tokens"))}
    lengths: dict[str, int] = {}
    response: dict[str, int | None] = {}

    def counted(rows) -> Iterator[Sample]:
        for _, s in rows:
            count, answer = hmg.get(s.id, (None, None))
            count = carried.get(s.id, count)
            if count is not None or s.length is not None:
                lengths[s.id] = count if count is not None else int(s.length)
            response[s.id] = answer
            yield s

    rows = iter_samples(input_path(cfg), DiscardRejects(), allow_download=cfg.allow_download,
                        reading=sample_reading(cfg))
    samples = PooledSamples.spill(counted(rows), layout.ranked)
    missing = [r["id"] for r in ranked if r["id"] not in samples]
    if missing:
        raise UserError(f"{layout.ranked}: {len(missing)} ranked id(s) are not in the samples, e.g. {missing[:3]}")
    return ScoredPool(ranked, samples, lengths, response)


def pool_size(cfg: SelectRun) -> int:
    """How many samples the ranked pool holds (counted, nothing kept)."""
    from longcurate.select.shard import iter_scores

    return sum(1 for _ in iter_scores(cfg.layout().ranked))


def pool_digests(cfg: SelectRun) -> dict[str, str | None]:
    """Digests of what the scored pool is read from (ranked file, HMG scores, the samples select scored),
    for a step that derives its output from the pool and must notice when it changes."""
    from longcurate.core.jsonl import file_digest
    from longcurate.core.reader import source_digest
    from longcurate.select.steps import input_path

    layout = cfg.layout()
    return {"ranked": file_digest(layout.ranked), "hmg": file_digest(layout.score("hmg")),
            "samples": source_digest(input_path(cfg))}


__all__ = ["ScoredPool", "PooledSamples", "scored_pool", "pool_size", "pool_digests"]
