"""What each sample will be, and which segments its question is asked about.

Every sample depends only on (seed, index): its kind and target length come from low-discrepancy
(Weyl) sequences in the index, which keeps the length histogram flat and the short share exact, and
every other draw comes from a generator seeded by (seed, index, attempt). Gold segments are drawn by
document, then by segment within it, so a long document is asked about no more often than a short one.

Multi-hop questions follow IN2 by default (`synth.multihop_source: document`): `multihop_segments`
distinct segments of ONE document, in the document's order, each later placed as its own gold span
among fillers from other documents. `cross` draws one segment from each of several documents instead.
Short copies (`kind: short`, ~`short_fraction`) keep their own document as the context; under
`document` a share `multihop_fraction` of them are multi-hop questions, as among the long samples.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from longcurate.core.errors import UserError
from longcurate.synth.config import SynthConfig
from longcurate.synth.qa import QARequest, SegmentText
from longcurate.synth.segment import SegmentPool

_ALPHA_KIND = (math.sqrt(5) - 1) / 2  # golden ratio: the most even Weyl sequence
_ALPHA_LEN = math.sqrt(2) - 1  # independent of the first (1, phi, sqrt 2 are rationally independent)


def sample_id(index: int, prefix: str = "in2") -> str:
    return f"{prefix}-{index:06d}"


def index_of(record_id: str) -> int:
    """The index in a sample id (`in2-000042` -> 42; ids past 999,999 have more digits)."""
    return int(record_id.rsplit("-", 1)[1])


def derived_seed(seed: int, name: str) -> int:
    """A 64-bit number fixed by (seed, name): another stream's seed, or (scaled) a draw in [0, 1)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest(), "big")


def _unit(seed: int, name: str) -> float:
    return derived_seed(seed, name) / 2 ** 64


@dataclass(frozen=True)
class Plan:
    """What sample `index` will be, fixed before any QA is generated."""

    index: int
    kind: str  # fine | multihop | short (the context)
    target: int  # target token length (long kinds)
    prefix: str = "in2"  # of the sample's id (the stream it belongs to)
    qa: str = "fine"  # the question: fine | multihop (a short sample may hold either)

    @property
    def id(self) -> str:
        return sample_id(self.index, self.prefix)


def plan(cfg: SynthConfig, seed: int, index: int, prefix: str = "in2") -> Plan:
    u_kind = (_unit(seed, "kind") + index * _ALPHA_KIND) % 1.0
    u_len = (_unit(seed, "length") + index * _ALPHA_LEN) % 1.0
    target = min(cfg.min_tokens + int(u_len * (cfg.max_tokens - cfg.min_tokens + 1)), cfg.max_tokens)
    if u_kind < cfg.short_fraction:
        # the short band, rescaled, splits like the long samples (a Weyl sequence stays even inside it)
        multihop = cfg.multihop_source == "document" and u_kind / cfg.short_fraction < cfg.multihop_fraction
        return Plan(index, "short", target, prefix, "multihop" if multihop else "fine")
    if u_kind < cfg.short_fraction + (1 - cfg.short_fraction) * cfg.multihop_fraction:
        return Plan(index, "multihop", target, prefix, "multihop")
    return Plan(index, "fine", target, prefix, "fine")


def _qtypes(cfg: SynthConfig, backend: str, qa: str) -> list[str]:
    if backend != "template":
        return [f"{backend}:{qa}"]
    return list(cfg.multihop_types if qa == "multihop" else cfg.fine_types)  # never empty (SynthConfig)


def check_multihop(cfg: SynthConfig, pool: SegmentPool) -> None:
    """Refuse, before any sample is made, a pool that cannot give the multi-hop questions asked for."""
    if cfg.multihop_fraction <= 0:
        return
    k = cfg.multihop_segments
    if cfg.multihop_source == "cross" and len(pool.docs) < k + 1:
        raise UserError(f"cross-document multi-hop questions need more than {k} documents; "
                        f"the corpus has {len(pool.docs)}")
    if cfg.multihop_source == "document" and not pool.docs_with(k):
        longest = max((len(r) for r in pool.doc_segments), default=0)
        raise UserError(f"multi-hop questions take {k} segments of one document, and no document of the corpus "
                        f"has {k} (the longest has {longest}); use a corpus of longer documents, lower "
                        f"synth.multihop_segments or synth.segment_tokens, set synth.multihop_fraction=0, or "
                        f"synth.multihop_source=cross")


def multihop_gold(cfg: SynthConfig, pool: SegmentPool, rng: random.Random) -> list[int]:
    """The gold segments (pool indices) of a multi-hop question, by `synth.multihop_source`: segments
    of one document (among those that have `multihop_segments`), in its order; or of as many documents."""
    check_multihop(cfg, pool)
    k = cfg.multihop_segments
    if cfg.multihop_source == "cross":
        return [pool.segment_of(d, rng) for d in rng.sample(range(len(pool.docs)), k)]
    r = pool.doc_segments[rng.choice(pool.docs_with(k))]
    return [r[j] for j in sorted(rng.sample(range(len(r)), k))]


def make_request(cfg: SynthConfig, backend: str, pool: SegmentPool, seed: int, p: Plan, attempt: int
                 ) -> tuple[QARequest, list[int]]:
    """The QA request for one attempt at sample `p.index`, and its gold segments (pool indices)."""
    rng = random.Random(f"{seed}:{p.index}:{attempt}:request")
    qtype = rng.choice(_qtypes(cfg, backend, p.qa))
    if p.qa == "multihop":
        gold = multihop_gold(cfg, pool, rng)
    else:
        gold = [pool.segment_of(rng.randrange(len(pool.docs)), rng)]
    segs = tuple(SegmentText(doc_id=pool.segments[g].doc_id, title=pool.segments[g].title,
                             index=pool.segments[g].index, text=pool.segments[g].text) for g in gold)
    req = QARequest(request_id=f"{p.id}-a{attempt}", kind=p.qa, qtype=qtype, segments=segs, seed=seed)
    return req, gold


__all__ = ["Plan", "plan", "sample_id", "index_of", "make_request", "multihop_gold", "check_multihop", "derived_seed"]
