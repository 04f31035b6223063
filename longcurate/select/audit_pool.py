"""The audit's planted pool: base samples from the run's synth output (or any samples file), each
planted once per type by `core.planted_pool.plant_paired`, placed against θ_A's view as select
scores it (`PromptView`: the prompt builder's own tokens and window arithmetic, so "far" means that
`PromptBuilder.window_view` leaves every evidence token out, "local" that it keeps them all).

Data without gold spans (LongAlign-format records) can only give the types that need none:
`natural` (the reference), `absent`, `wrong`.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.core.jsonl import RejectSink, reject, write_jsonl
from longcurate.core.planted import POSITION_TYPES
from longcurate.core.planted_pool import plant_paired
from longcurate.core.records import Sample
from longcurate.select.inputs import InputReject, PromptBuilder, load_samples

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun

log = logging.getLogger("longcurate.select")

GOLD_TYPES = ["far", "local", "absent", "wrong"]  # the default types of data with gold spans
NO_GOLD_TYPES = ["natural", "absent", "wrong"]  # ... and of data without


@dataclass
class PromptView:
    """θ_A's view of a sample as select builds it: its window minus the tokens of the prompt and
    response besides the context; evidence positions in the tokens of that one tokenization."""

    builder: PromptBuilder
    window: int

    @property
    def tokenizer(self) -> Any:
        return self.builder.tok

    def budget(self, sample: Sample) -> int:
        p = self.builder.prepare(sample)
        t0, t1 = p.context_span
        return max(0, self.window - (len(p.input_ids) - (t1 - t0)))

    def evidence(self, sample: Sample) -> tuple[int, int] | None:
        if not sample.gold:
            return None
        p = self.builder.prepare(sample)
        starts = p.context_char_start
        n = len(starts)
        after_end = n - bisect.bisect_left(starts, max(g.char_end for g in sample.gold))
        from_start = n - (bisect.bisect_right(starts, min(g.char_start for g in sample.gold)) - 1)
        return after_end, from_start


def audit_window(cfg: SelectRun) -> int:
    """θ_A's view for far / local: `select.audit.window`, else `select.window`."""
    window = cfg.select.audit.window or cfg.select.window
    if not window:
        raise UserError("select audit: set select.audit.window (the tokens θ_A can use) when select.window is "
                        "null (θ_A is a separate model or a RoPE override over the full input)")
    return int(window)


def pool_types(cfg: SelectRun, samples: list[Sample]) -> list[str]:
    """`select.audit.types`, else the default for the data: with gold spans (any sample) or without."""
    if cfg.select.audit.types:
        return list(cfg.select.audit.types)
    return GOLD_TYPES if any(s.gold for s in samples) else NO_GOLD_TYPES


def base_samples(samples: list[tuple[int, Sample]], types: list[str], builder: PromptBuilder, source: str,
                 rejects: RejectSink) -> tuple[list[Sample], dict[str, int]]:
    """The samples that can be planted: long kinds (a `short` sample's context is its own document),
    with gold spans when a type moves the evidence, and tokenizable under the prompt format (the others
    are quarantined with the reason)."""
    skipped = {"short": 0, "no gold": 0}
    out = []
    for line, s in samples:
        if s.kind == "short":
            skipped["short"] += 1
            continue
        if not s.gold and any(t in POSITION_TYPES for t in types):
            skipped["no gold"] += 1
            continue
        try:
            builder.prepare(s)
        except InputReject as e:
            reject(rejects, e.reason, file=source, line=line, field_name=e.field, record_id=s.id)
            continue
        out.append(s)
    return out, skipped


def build_pool(cfg: SelectRun, builder: PromptBuilder, source: Path, output: Path, rejects: RejectSink
               ) -> dict[str, Any]:
    """Plant the pool from `source` into `output` (bad records and base samples that cannot give every
    type go to `rejects`); returns the pool's stats. Base samples are taken in file order until at
    least `select.audit.base_samples` of them give every type."""
    audit = cfg.select.audit
    samples = load_samples(source, rejects, allow_download=cfg.allow_download)
    lines = {s.id: line for line, s in samples}
    types = pool_types(cfg, [s for _, s in samples])
    bases, skipped = base_samples(samples, types, builder, str(source), rejects)
    view = PromptView(builder, audit_window(cfg))
    pool = plant_paired(bases, view, types, seed=cfg.seed, margin=audit.margin, stratum_size=audit.stratum_size,
                        limit=audit.base_samples)
    for s, reason in pool.rejected:
        reject(rejects, reason, file=str(source), line=lines.get(s.id), field_name="gold", record_id=s.id)
    if not pool.records:
        raise UserError(f"select audit: no sample of {source} could be planted as {types} "
                        f"({len(bases)} candidates; see {output.name}'s quarantine)")
    write_jsonl(output, (r.to_dict() for r in pool.records))
    stats = {"types": types, "records": len(pool.records), "base_samples": len(pool.records) // len(types),
             "per_type": pool.counts(), "window": view.window, "skipped": skipped,
             "left_out": len(pool.rejected)}
    log.info("audit pool: %s", stats)
    return stats


__all__ = ["PromptView", "GOLD_TYPES", "NO_GOLD_TYPES", "audit_window", "pool_types", "base_samples", "build_pool"]
