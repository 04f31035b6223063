"""A stable split of a corpus into a training part and an evaluation part, by a hash of each
document's id: synth draws training contexts from one part only, probes and needle haystacks from
the other, so no evaluation answer can be a training sample's text.

The split depends only on (document id, salt, fraction): it is the same on every machine, for every
seed, whatever order the corpus is read in, and growing the corpus never moves a document across.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from longcurate.core.rules import between, require

Side = Literal["train", "eval"]


@dataclass
class HoldoutConfig:
    fraction: float = 0.2  # share of each corpus's documents kept for evaluation (0: no held-out part)
    salt: str = "longcurate-holdout-v1"  # another salt draws another split

    def __post_init__(self) -> None:
        between("holdout.fraction", self.fraction, 0.0, 1.0, high_open=True)
        require(bool(self.salt), "holdout.salt", "must not be empty")


@dataclass(frozen=True)
class Corpora:
    """The corpus each side of the split reads: synth's (training text) and eval's (probes, needles).
    Each side asks `partitioned(mine, other)` whether it must keep to its part."""

    synth: str
    eval: str


def unit_hash(doc_id: str, salt: str) -> float:
    """A number in [0, 1) fixed by (salt, doc_id)."""
    digest = hashlib.blake2b(f"{salt}\x00{doc_id}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def side_of(doc_id: str, holdout: HoldoutConfig) -> Side:
    """Which part a document belongs to."""
    return "eval" if unit_hash(doc_id, holdout.salt) < holdout.fraction else "train"


def keeps(doc_id: str, side: Side | None, holdout: HoldoutConfig) -> bool:
    """Whether a reader of `side` may use the document (`None`: the whole corpus)."""
    return side is None or side_of(doc_id, holdout) == side




def partitioned(corpus: str, other_side: str | None) -> bool:
    """Whether a side reading `corpus` must keep to its part: always for the bundled corpus, and for a
    user corpus that the other side reads too. A side given a corpus of its own reads all of it (the
    two sides cannot share a document; `longcurate check contamination` measures what they share)."""
    from longcurate.core.bundled import WIKI_ALIAS

    return corpus == WIKI_ALIAS or (other_side is not None and str(corpus) == str(other_side))


__all__ = ["HoldoutConfig", "Corpora", "Side", "unit_hash", "side_of", "keeps", "partitioned"]
