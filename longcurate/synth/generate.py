"""Samples from plans: QA requests in batches, answers placed in their contexts, one outcome per sample.

A sample ends in one of four states (`Outcome.status`):
- `done`: answered and assembled;
- `given_up`: `max_attempts` draws all failed on their content (the template found no question, the
  answer was ungrounded, a key fragment was ambiguous); it goes to the quarantine;
- `pending`: the backend could not answer for a reason outside the item (the endpoint was down, slow,
  rate limited or failing, or a cap or the circuit breaker stopped it); a later run retries it with the
  same draws, so the file it ends up in equals an uninterrupted run's;
- `refused`: the endpoint turned this item down (HTTP 4xx other than 429); recorded with its reason.
A pending or refused sample is not redrawn: its content must not depend on the endpoint's health.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from longcurate.core.prompts import messages_for
from longcurate.core.records import Sample
from longcurate.synth.assemble import Assembled, AssemblyError, LengthModel, assemble_long, assemble_short
from longcurate.synth.config import SynthConfig
from longcurate.synth.plan import Plan, make_request, plan
from longcurate.synth.qa import PENDING, REFUSED, QABackend, QARequest, QAResult
from longcurate.synth.segment import SegmentPool

DONE, GIVEN_UP = "done", "given_up"


@dataclass
class Outcome:
    index: int
    sample: Sample | None = None
    error: str | None = None  # why it is not done
    attempts: int = 0
    filler_rejections: int = 0
    failures: Counter = field(default_factory=Counter)  # reason class -> count, over failed attempts
    status: str = PENDING  # done | given_up | pending | refused
    underfilled: bool = False  # the context is shorter than its target: too few usable fillers


def build_sample(pool: SegmentPool, lm: LengthModel, p: Plan, req: QARequest, gold: list[int], res: QAResult
                 ) -> tuple[Sample, Assembled]:
    """Place an answered QA pair in its context and make the record; raises AssemblyError."""
    rng = random.Random(f"{req.seed}:{req.request_id}:assemble")
    q, a = res.question or "", res.answer or ""
    if p.kind == "short":
        asm = assemble_short(pool, gold, q, a, res.key_fragments, lm)
    else:
        asm = assemble_long(pool, gold, q, a, res.key_fragments, p.target, rng, lm)
    segs = [pool.segments[g] for g in gold]
    source = {"doc_ids": [s.doc_id for s in segs], "doc_segments": [s.index for s in segs],
              "generator": res.generator, "key_fragments": list(res.key_fragments)}
    if p.kind != "short":
        source["target_length"] = p.target
    sample = Sample(id=p.id, kind=p.kind, context=asm.context, instruction=q, response=a,
                    messages=messages_for(asm.context, q, a), gold=asm.gold, num_segments=asm.num_segments,
                    length=asm.length, source=source)
    return sample, asm


def _settle(out: Outcome, p: Plan, req: QARequest, gold: list[int], res: QAResult, pool: SegmentPool,
            lm: LengthModel) -> bool:
    """Record one attempt's result in the outcome; True when the sample needs another draw."""
    if not res.ok:
        reason = res.error or "empty question or answer"
        if res.failure in (PENDING, REFUSED):
            out.status, out.error = res.failure, reason
            return False
        out.failures["qa: " + reason.split(":")[0]] += 1
        out.error = f"qa failed: {reason}"
        return True
    try:
        out.sample, asm = build_sample(pool, lm, p, req, gold, res)
    except AssemblyError as e:
        out.failures[str(e).split(":")[0]] += 1
        out.error = str(e)
        return True
    out.filler_rejections += asm.filler_rejections
    out.underfilled = asm.underfilled
    out.status, out.error = DONE, None
    return False


def _attempt_chunk(cfg: SynthConfig, pool: SegmentPool, lm: LengthModel, backend: QABackend, seed: int,
                   chunk: list[Plan]) -> list[Outcome]:
    outcomes = {p.index: Outcome(p.index) for p in chunk}
    active = list(chunk)
    for attempt in range(cfg.max_attempts):
        if not active:
            break
        if backend.exhausted:  # stopped (cap, key, circuit breaker): the rest waits for a later run
            for p in active:
                outcomes[p.index].status, outcomes[p.index].error = PENDING, backend.stop_reason
            active = []
            break
        reqs = [make_request(cfg, backend.name, pool, seed, p, attempt) for p in active]
        results = backend.generate([r for r, _ in reqs])
        if len(results) != len(reqs):
            raise RuntimeError(f"QA backend returned {len(results)} results for {len(reqs)} requests")
        still = []
        for p, (req, gold), res in zip(active, reqs, results):
            outcomes[p.index].attempts = attempt + 1
            if _settle(outcomes[p.index], p, req, gold, res, pool, lm):
                still.append(p)
        active = still
    for p in active:  # every draw failed on its content
        outcomes[p.index].status = GIVEN_UP
    return [outcomes[p.index] for p in chunk]


def generate(cfg: SynthConfig, pool: SegmentPool, lm: LengthModel, backend: QABackend, seed: int,
             indices: Iterable[int], prefix: str = "in2") -> Iterator[Outcome]:
    """Outcomes in index order, `cfg.batch_size` QA requests at a time; ids `<prefix>-<index>`. Once
    the backend stops, the remaining samples come out pending without being tried."""
    indices = list(indices)
    for start in range(0, len(indices), max(1, cfg.batch_size)):
        part = indices[start:start + cfg.batch_size]
        if backend.exhausted:
            yield from (Outcome(i, error=backend.stop_reason) for i in part)
            continue
        yield from _attempt_chunk(cfg, pool, lm, backend, seed, [plan(cfg, seed, i, prefix) for i in part])


__all__ = ["Outcome", "build_sample", "generate", "DONE", "GIVEN_UP"]
