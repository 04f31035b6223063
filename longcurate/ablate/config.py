"""Configuration of `longcurate ablate` (defaults and rules live here): which arms, seeds, budget and
measures.

An arm is a way to pick the long training data from one scored pool: each of the select stage's budget
methods (`gateau`, `random`, `hmg-only`, `cam-only`, `length`, ...: `select.config.METHODS`) at one
budget, plus two references, `full` (the whole scored pool) and `short-only` (no long data). Every arm
trains with the same short data, base model and number of optimiser steps, once per seed, and is
evaluated on the same items.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longcurate.core.rules import above, at_least, each_of, one_of, require
from longcurate.select.config import METHODS

REFERENCE_ARMS = ("full", "short-only")
ARMS = (*METHODS, *REFERENCE_ARMS)
BASELINE = "random"  # every arm is compared with this one, item by item
UNITS = ("samples", "tokens")
# nll: teacher-forced answer NLL (eval's "nll": probes and held-out samples; lower is better);
# probes: generation accuracy on the probes (eval's "probes"; higher is better; slower, noisier).
MEASURES = ("nll", "probes")


@dataclass
class AblateConfig:
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # training seeds (mixture order, init of batching)
    # samples: a sample count, or a fraction (< 1) of the scored pool; tokens: a token total, filled in
    # each method's order until the next sample would pass it (so `length` cannot train on more tokens).
    budget: float = 0.25
    budget_unit: str = "samples"  # samples (the paper's) | tokens
    measures: list[str] = field(default_factory=lambda: ["nll"])  # the first one is the primary measure
    base: bool = True  # evaluate the untrained base model too, as a reference row
    position_buckets: int = 4  # the position curve: evidence position 0..1 cut into this many buckets
    output: str | None = None  # default: <output_dir>/ablation

    def __post_init__(self) -> None:
        each_of("ablate.arms", self.arms, ARMS)
        require(BASELINE in self.arms, "ablate.arms", f"must include `{BASELINE}`: every arm is compared with it")
        require(len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds), "ablate.seeds",
                f"must be distinct seeds, got {self.seeds}")
        for seed in self.seeds:
            at_least("ablate.seeds", seed, 0)
        one_of("ablate.budget_unit", self.budget_unit, UNITS)
        above("ablate.budget", self.budget)
        if self.budget_unit == "tokens":
            at_least("ablate.budget", self.budget, 1)  # a token total, not a fraction
        else:
            require(self.budget < 1 or self.budget == int(self.budget), "ablate.budget",
                    f"must be a whole sample count or a fraction below 1, got {self.budget:g}")
        each_of("ablate.measures", self.measures, MEASURES)
        at_least("ablate.position_buckets", self.position_buckets, 1)


__all__ = ["AblateConfig", "ARMS", "REFERENCE_ARMS", "BASELINE", "UNITS", "MEASURES"]
