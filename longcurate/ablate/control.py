"""The positive control `control-wrong`: one random draw's samples with their answers swapped between
samples of one question type, by the planted `wrong` construction (`core.planted.with_donor`: the
sample's own context, question and gold, another sample's answer). If training on these is not
detectably worse than training on the same samples with their own answers, the setup cannot detect
data quality, and no selection result read from it means anything.

Inside the draw, the samples of one question type (`source.generator`) form one group
(`core.planted_pool.strata`); `core.planted_pool.match_donors` turns each group into a permutation of
donors: no sample its own donor, every donor's answer different from the host's (`donor_problem`),
answer lengths as close as possible. The arm then holds the same contexts, questions and answer texts
as the draw, wrongly paired, and as many response tokens. A sample that no other sample of its group can
serve takes the answer of the nearest-length sample of its type in the rest of the pool (counted as
`donors_from_pool`); one that no sample of the pool can serve keeps its answer (`left_correct`).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.core.planted import ChatView, donor_problem, with_donor
from longcurate.core.planted_pool import answer_tokens, match_donors, strata
from longcurate.core.records import Sample

if TYPE_CHECKING:
    from longcurate.config import RunConfig
    from longcurate.select.pool import ScoredPool


def view_window(cfg: RunConfig) -> int:
    """θ_A's window, which the planted records' placement fields are measured against."""
    window = cfg.select.window or cfg.synth.planted.window
    if not window:
        raise UserError("ablate: the control-wrong arm needs θ_A's window (select.window or synth.planted.window) "
                        "to place its planted records")
    return int(window)


def control_settings(cfg: RunConfig) -> dict[str, Any]:
    """What decides the control's records besides its draw: the construction, the tokenizer, the window."""
    return {"construction": "planted wrong, permuted within question type", "tokenizer": cfg.model,
            "window": view_window(cfg)}


def qtype(s: Sample) -> str:
    return str(s.source.get("generator") or s.kind)


def answer_of(s: Sample) -> Sample:
    """What a pool donor gives: its id, question type and answer, without the texts it came with, so the
    pool's answers fit in memory and the pool is read once per draw."""
    return Sample(id=s.id, context="", instruction="", response=s.response, messages=[], kind=s.kind,
                  source={"generator": s.source["generator"]} if s.source.get("generator") else {})


def pool_donor(host: Sample, pool: list[Sample], lengths: dict[str, int], rng: random.Random) -> Sample | None:
    """The nearest-length sample of the host's question type in the pool that passes the donor check."""
    fits = [d for d in pool if qtype(d) == qtype(host) and donor_problem("wrong", host, d) is None]
    if not fits:
        return None
    return min(fits, key=lambda d: (abs(lengths[d.id] - lengths[host.id]), rng.random()))


def donors(samples: list[Sample], pool: list[Sample], lengths: dict[str, int],
           rng: random.Random) -> tuple[dict[str, Sample], int]:
    """host id -> donor: a permutation within each question type of the draw, else a pool donor (from
    the pool's answers outside the draw); and how many came from the pool."""
    found: dict[str, Sample] = {}
    for group in strata(samples, lengths, max(2, len(samples))):  # one group per question type
        if len(group) >= 2:
            matched, _ = match_donors(group, {s.id: s for s in group}, "wrong", lengths, rng)
            found.update(matched)
    drawn = {s.id for s in samples}
    outside = [a for a in pool if a.id not in drawn]
    from_pool = 0
    for s in samples:
        if s.id not in found:
            donor = pool_donor(s, outside, lengths, rng)
            if donor is not None:
                found[s.id] = donor
                from_pool += 1
    return found, from_pool


def swap_answers(cfg: RunConfig, samples: list[Sample], pool: ScoredPool, seed: int) -> tuple[list[Sample], dict]:
    """The control's records for one random draw (in the draw's order; `seed`: the draw's) and their stats."""
    from longcurate.core.models import load_tokenizer

    tokenizer = load_tokenizer(cfg.model, cfg.allow_download, cfg.trust_remote_code)
    view = ChatView(tokenizer, view_window(cfg))
    answers = [answer_of(s) for s in pool.samples.values()]  # the pool read once (its samples are on disk)
    lengths = answer_tokens(answers, tokenizer)
    rng = random.Random(f"{seed}:control-wrong")
    found, from_pool = donors(samples, answers, lengths, rng)
    records = [with_donor("wrong", s, found[s.id], view) if s.id in found else s for s in samples]
    response = sum(pool.response_tokens[found[s.id].id if s.id in found else s.id] or 0 for s in samples)
    return records, {"response_tokens": response, "swapped": len(found), "donors_from_pool": from_pool,
                     "left_correct": len(samples) - len(found)}


__all__ = ["swap_answers", "control_settings", "donors", "view_window"]
