"""The scored pool as other commands read it (an ablation picks its arms from it): the ranked records,
the samples they rank, and each sample's token counts as select measured them, so a reader never opens
select's score files or spells their fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.core.records import Sample, is_count

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun


@dataclass(frozen=True)
class ScoredPool:
    """`ranked`: the ranked records, best first (`id`, `score`, `hmg`, `cas`, ...); `samples` by id;
    `lengths`: prompt + response tokens as θ_B scored them (what the `length` order reads: the ranked
    record's `n_tokens`, else the HMG file's, else the sample's own `length`; absent where none says);
    `response_tokens`: the response tokens θ_B
    scored (None where the HMG file has no usable count)."""

    ranked: list[dict[str, Any]]
    samples: dict[str, Sample]
    lengths: dict[str, int]
    response_tokens: dict[str, int | None]


def scored_pool(cfg: SelectRun) -> ScoredPool:
    """The run's ranked pool (`select rank`'s output) with its samples and token counts."""
    from longcurate.select.shard import read_scores
    from longcurate.select.stage import load_sample_map

    layout = cfg.layout()
    if not layout.ranked.exists():
        raise UserError(f"{layout.ranked}: no ranked pool (run `longcurate select` first)")
    ranked = read_scores(layout.ranked)
    samples = load_sample_map(cfg)
    missing = [r["id"] for r in ranked if r["id"] not in samples]
    if missing:
        raise UserError(f"{layout.ranked}: {len(missing)} ranked id(s) are not in the samples, e.g. {missing[:3]}")
    hmg = {str(r["id"]): r for r in read_scores(layout.score("hmg"))} if layout.score("hmg").exists() else {}
    carried = {str(r["id"]): r for r in ranked if is_count(r.get("n_tokens"))}  # ranked records that carry counts
    lengths, response = {}, {}
    for i, s in samples.items():
        rec = hmg.get(i, {})
        count = carried.get(i, rec).get("n_tokens")
        if is_count(count) or s.length is not None:
            lengths[i] = int(count) if is_count(count) else int(s.length)
        response[i] = int(rec["n_response_tokens"]) if is_count(rec.get("n_response_tokens")) else None
    return ScoredPool(ranked, samples, lengths, response)


def pool_digests(cfg: SelectRun) -> dict[str, str | None]:
    """Digests of what the scored pool is read from (ranked file, HMG scores, the samples select scored),
    for a step that derives its output from the pool and must notice when it changes."""
    from longcurate.core.jsonl import file_digest
    from longcurate.core.reader import source_digest
    from longcurate.select.steps import input_path

    layout = cfg.layout()
    return {"ranked": file_digest(layout.ranked), "hmg": file_digest(layout.score("hmg")),
            "samples": source_digest(input_path(cfg))}


__all__ = ["ScoredPool", "scored_pool", "pool_digests"]
