"""Configuration of `longcurate ablate` (defaults live here): which arms, seeds, budget and measures.

An arm is a way to pick the long training data from one scored pool: each of the select stage's
methods (`gateau`, `random`, `hmg-only`, `cam-only`, `length`, ...: select.budget.METHODS) at one budget, plus two references, `full`
(the whole scored pool) and `short-only` (no long data). Every arm trains with the same short data,
base model and number of optimiser steps, once per seed, and is evaluated on the same items.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longcurate.core.errors import ConfigError
from longcurate.select.budget import METHODS

METHOD_ARMS = METHODS  # select/budget.py's method orders (gateau, random, hmg-only, cam-only, length, ...)
REFERENCE_ARMS = ("full", "short-only")
ARMS = (*METHOD_ARMS, *REFERENCE_ARMS)
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
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ConfigError(f"ablate.arms: unknown arm(s) {unknown}; arms are {list(ARMS)}")
        if len(set(self.arms)) != len(self.arms) or not self.arms:
            raise ConfigError(f"ablate.arms must name distinct arms, got {self.arms}")
        if BASELINE not in self.arms:
            raise ConfigError(f"ablate.arms must include `{BASELINE}`: every arm is compared with it")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"ablate.seeds must be distinct seeds, got {self.seeds}")
        if self.budget_unit not in UNITS:
            raise ConfigError(f"ablate.budget_unit must be one of {list(UNITS)}, got {self.budget_unit!r}")
        if not self.budget > 0 or (self.budget_unit == "tokens" and self.budget < 1):
            raise ConfigError(f"ablate.budget must be positive (tokens: at least 1), got {self.budget}")
        bad = [m for m in self.measures if m not in MEASURES]
        if bad or not self.measures or len(set(self.measures)) != len(self.measures):
            raise ConfigError(f"ablate.measures must be distinct entries of {list(MEASURES)}, got {self.measures}")
        if self.position_buckets < 1:
            raise ConfigError(f"ablate.position_buckets must be >= 1, got {self.position_buckets}")


__all__ = ["AblateConfig", "ARMS", "METHOD_ARMS", "REFERENCE_ARMS", "BASELINE", "UNITS", "MEASURES"]
