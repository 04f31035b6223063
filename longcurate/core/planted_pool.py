"""Pools of planted samples (`core.planted` defines the types), in two designs that share strata,
moves and donor checks:

- **paired** (`select audit`): every base sample appears once per type. `far` and `local` are its
  evidence moved; `absent` and `wrong` take the reference variant's context (`far` when the pool has
  it, else the sample as it is) with another sample's question and answer, or another sample's answer.
  The donors of each type form a permutation inside each stratum, so every type holds exactly the same
  answers (and `absent` the same questions) as `far`: answer length and question form are equal across
  types by construction, and each contrast (far vs local: position; far vs wrong: the answer's
  correctness; far vs absent: answerability) changes one thing.
- **shares** (`synth.planted`): each long sample becomes one type, dealt inside strata so that every
  type gets its share of each stratum (within one sample per stratum); the others stay `natural`.

A stratum is a question type (`source.generator`) and an answer-length bucket: the type's samples
sorted by answer tokens and cut into consecutive groups of `stratum_size` (a short last group joins
the one before). Donors come from the host's stratum, chosen to make the answer lengths of host and
donor as close as possible (`scipy.optimize.linear_sum_assignment` for the paired permutation).
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from longcurate.core.planted import (DONOR_TYPES, PLANTED_TYPES, POSITION_TYPES, View, count_tokens, donor_problem,
                                     move_evidence, planted_record, with_donor)
from longcurate.core.records import Sample

_FORBIDDEN = 1e9  # the cost of a donor that may not serve (its own sample, or a failed donor check)


@dataclass
class PlantedPool:
    """Planted records, the base samples left out with the reason, and counts per type."""

    records: list[Sample] = field(default_factory=list)
    rejected: list[tuple[Sample, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.records:
            out[(r.planted or {}).get("type", "none")] += 1
        return dict(sorted(out.items()))


def check_types(types: Iterable[str]) -> list[str]:
    types = list(types)
    bad = [t for t in types if t not in PLANTED_TYPES]
    if bad or not types or len(set(types)) != len(types):
        raise ValueError(f"planted types must be distinct entries of {list(PLANTED_TYPES)}, got {types}")
    return types


def answer_tokens(samples: Iterable[Sample], tokenizer) -> dict[str, int]:
    return {s.id: count_tokens(tokenizer, s.response) for s in samples}


def strata(samples: list[Sample], lengths: dict[str, int], size: int) -> list[list[Sample]]:
    """Groups of samples of one question type and similar answer length (see the module docstring)."""
    by_type: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_type[str(s.source.get("generator") or s.kind)].append(s)
    groups: list[list[Sample]] = []
    for qtype in sorted(by_type):
        ordered = sorted(by_type[qtype], key=lambda s: (lengths[s.id], s.id))
        cut = [ordered[i:i + size] for i in range(0, len(ordered), size)]
        if len(cut) > 1 and len(cut[-1]) < size:
            cut[-2].extend(cut.pop())
        groups.extend(cut)
    return groups


def match_donors(group: list[Sample], hosts: dict[str, Sample], kind: str, lengths: dict[str, int],
                 rng: random.Random) -> tuple[dict[str, Sample], list[str]]:
    """A permutation of the group's samples as donors for its hosts (`hosts[id]`: the variant that
    receives the donor), no sample its own donor, every donor passing `donor_problem`, answer lengths as
    close as possible (ties broken at random). Returns host id -> donor, and the hosts left unmatched."""
    n = len(group)
    cost = np.full((n, n), _FORBIDDEN)
    for i, base in enumerate(group):
        for j, donor in enumerate(group):
            if donor_problem(kind, hosts[base.id], donor) is None:
                cost[i, j] = abs(lengths[base.id] - lengths[donor.id]) + 1e-3 * rng.random()
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    matched = {group[r].id: group[c] for r, c in zip(rows, cols) if cost[r, c] < _FORBIDDEN}
    return matched, [s.id for s in group if s.id not in matched]


def _moved(s: Sample, kinds: list[str], view: View, margin: int, seed: int) -> dict[str, Sample] | str:
    out = {}
    for kind in kinds:
        moved = move_evidence(s, kind, view, margin, random.Random(f"{seed}:{s.id}:{kind}"))
        if isinstance(moved, str):
            return f"{kind}: {moved}"
        out[kind] = moved
    return out


def plant_paired(bases: list[Sample], view: View, types: list[str], *, seed: int, margin: int,
                 stratum_size: int, limit: int | None = None) -> PlantedPool:
    """Every base sample once per type (ids `<base id>.<type>`), in base order, then type order; a
    base sample that cannot give every type is left out, with the reason. `limit`: base samples are
    taken in order until at least that many give every type (one that cannot is replaced by the next;
    a newcomer can complete a stratum and so bring back one left out before)."""
    types = check_types(types)
    rejected: list[tuple[Sample, str]] = []
    variants: dict[str, dict[str, Sample]] = {}
    taken: list[Sample] = []
    pending = iter(bases)
    need = len(bases) if limit is None else limit
    while True:
        for s in pending:
            moved = _moved(s, [t for t in types if t in POSITION_TYPES], view, margin, seed)
            if isinstance(moved, str):
                rejected.append((s, moved))
                continue
            natural = planted_record(s, "natural", view) if "natural" in types or "far" not in moved else None
            variants[s.id] = {**moved, "reference": moved.get("far") or natural, "natural": natural}
            taken.append(s)
            if len(taken) >= need:
                break
        pool = PlantedPool(rejected=list(rejected))
        lengths = answer_tokens(taken, view.tokenizer)
        donors = _donor_permutations(taken, variants, [t for t in types if t in DONOR_TYPES], lengths,
                                     stratum_size, seed, pool)
        if limit is None or len(donors) >= limit or len(taken) < need:  # enough, or no base sample left
            break
        need += limit - len(donors)
    for s in taken:
        if s.id not in donors:
            continue
        for kind in types:
            rec = (with_donor(kind, variants[s.id]["reference"], donors[s.id][kind], view)
                   if kind in DONOR_TYPES else variants[s.id][kind])
            pool.records.append(dataclasses.replace(rec, id=f"{s.id}.{kind}"))
    return pool


def _donor_permutations(alive: list[Sample], variants: dict[str, dict[str, Sample]], kinds: list[str],
                        lengths: dict[str, int], stratum_size: int, seed: int,
                        pool: PlantedPool) -> dict[str, dict[str, Sample]]:
    """base id -> {donor type: donor}, one permutation per stratum and type. A host that no donor of
    its stratum can serve is left out (rejected) and the strata are cut again without it, until
    every remaining host has a donor of every type."""
    rng = random.Random(f"{seed}:donors")
    hosts = {s.id: variants[s.id]["reference"] for s in alive}
    while True:
        found: dict[str, dict[str, Sample]] = {s.id: {} for s in alive}
        dropped: dict[str, str] = {}
        for group in strata(alive, lengths, stratum_size):
            for kind in kinds:
                if len(group) < 2:
                    dropped.update({s.id: f"{kind}: no other sample of its question type to take an answer from"
                                    for s in group})
                    continue
                matched, unmatched = match_donors(group, hosts, kind, lengths, rng)
                for host_id, donor in matched.items():
                    found[host_id][kind] = donor
                dropped.update({h: f"{kind}: no sample of its stratum passes the donor check" for h in unmatched})
        if not dropped:
            return found
        pool.rejected.extend((s, dropped[s.id]) for s in alive if s.id in dropped)
        alive = [s for s in alive if s.id not in dropped]


def allocate(ordered: list[Sample], shares: dict[str, float]) -> dict[str, str]:
    """Sample id -> type, dealt along `ordered` (strata one after another) so that after every sample
    each type is as close as it can be to its share: each type within one sample of its share overall
    and inside every stratum. What the shares leave is `natural`."""
    quota = {**shares, "natural": max(0.0, 1.0 - sum(shares.values()))}
    given = {t: 0 for t in quota}
    out = {}
    for i, s in enumerate(ordered, start=1):
        kind = max(quota, key=lambda t: (quota[t] * i - given[t], -list(quota).index(t)))
        given[kind] += 1
        out[s.id] = kind
    return out


def plant_shares(samples: list[Sample], view: View, shares: dict[str, float], *, seed: int, margin: int,
                 stratum_size: int) -> tuple[list[Sample], dict[str, int]]:
    """Each long sample with gold spans dealt to a type by `shares` (the rest, and short samples,
    `natural`), in the input's order; returns the records and counts (`<type>` planted, `<type> failed`
    when a sample could not be made that type and stayed natural)."""
    bad = [t for t in shares if t not in PLANTED_TYPES or t == "natural"]
    if bad or any(v < 0 for v in shares.values()) or sum(shares.values()) > 1 + 1e-9:
        raise ValueError(f"planted shares must be >= 0, sum to at most 1 and name {list(PLANTED_TYPES[:4])}, "
                         f"got {shares}")
    eligible = [s for s in samples if s.gold and s.kind != "short"]
    lengths = answer_tokens(eligible, view.tokenizer)
    rng = random.Random(f"{seed}:planted-shares")
    groups = strata(eligible, lengths, stratum_size)
    ordered = []
    for group in groups:
        ordered.extend(rng.sample(group, len(group)))
    kinds = allocate(ordered, shares)
    group_of = {s.id: group for group in groups for s in group}
    counts: dict[str, int] = defaultdict(int)
    out = []
    for s in samples:
        kind = kinds.get(s.id, "natural")
        rec = _one_type(s, kind, view, group_of.get(s.id, []), lengths, margin, seed)
        if rec is None:
            counts[f"{kind} failed"] += 1
            rec = planted_record(s, "natural", view)
        counts[rec.planted["type"]] += 1
        out.append(rec)
    return out, dict(sorted(counts.items()))


def _one_type(s: Sample, kind: str, view: View, group: list[Sample], lengths: dict[str, int], margin: int,
              seed: int) -> Sample | None:
    """One sample made `kind` (shares design); None when it cannot be (no position, no donor)."""
    if kind == "natural":
        return planted_record(s, "natural", view)
    if kind in POSITION_TYPES:
        moved = move_evidence(s, kind, view, margin, random.Random(f"{seed}:{s.id}:{kind}"))
        return None if isinstance(moved, str) else moved
    rng = random.Random(f"{seed}:{s.id}:{kind}")
    donors = sorted((d for d in group if donor_problem(kind, s, d) is None),
                    key=lambda d: (abs(lengths[d.id] - lengths[s.id]), rng.random()))
    return with_donor(kind, s, donors[0], view) if donors else None


__all__ = ["PlantedPool", "check_types", "answer_tokens", "strata", "match_donors", "plant_paired", "allocate",
           "plant_shares"]
