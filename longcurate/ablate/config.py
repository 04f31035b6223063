"""Configuration of `longcurate ablate` (defaults live here): which arms, seeds, subsets, budget,
measures and pass criteria.

An arm is a way to pick the long training data from one scored pool: each of the select stage's
methods (`gateau`, `random`, `hmg-only`, `cam-only`, `length`, `ifd`, `perplexity`: select.config.METHODS)
at one budget; `oracle` (only the pool's planted `far` samples: those that need distant context); the
positive control `control-wrong` (the `random` arm's samples with answers swapped between samples of one
question type); and two references, `full` (the whole scored pool) and `short-only` (no long data).
Every arm trains with the same short data, base model and number of optimiser steps, once per seed, and
is evaluated on the same items. The arms whose choice is random (`random`, and `control-wrong`, which
follows it) are drawn `subsets` times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longcurate.core.rules import above, at_least, between, each_of, one_of, require
from longcurate.select.config import METHODS

ORACLE = "oracle"
CONTROL = "control-wrong"
REFERENCE_ARMS = ("full", "short-only")
ARMS = (*METHODS, ORACLE, CONTROL, *REFERENCE_ARMS)
BASELINE = "random"  # every arm is compared with this one, item by item
DRAWN_ARMS = (BASELINE, CONTROL)  # drawn `subsets` times; the control's draw k is random's draw k
# samples: a count, or a fraction (< 1) of the pool; tokens: all tokens as training sees them;
# response_tokens: the trained-on (response) tokens only.
UNITS = ("samples", "tokens", "response_tokens")
# nll: teacher-forced answer NLL (eval's "nll": probes and held-out samples; lower is better);
# probes: generation accuracy on the probes (eval's "probes"; higher is better; slower, noisier).
MEASURES = ("nll", "probes")


@dataclass
class AblateCriteria:
    """What the report concludes, fixed before any result is seen. An arm differs from `random` when
    its Holm-adjusted p-value (over every trained arm compared with random) is below `alpha`; the setup
    can detect data quality only when `control-wrong` differs from random in the worse direction, and
    no selection conclusion is drawn otherwise. `power` sizes the minimum detectable difference."""

    alpha: float = 0.05
    power: float = 0.8

    def __post_init__(self) -> None:
        between("ablate.criteria.alpha", self.alpha, 0, 1, high_open=True)
        above("ablate.criteria.alpha", self.alpha)
        between("ablate.criteria.power", self.power, 0, 1, high_open=True)
        above("ablate.criteria.power", self.power)


@dataclass
class AblateConfig:
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # training seeds (mixture order, init of batching)
    subsets: int = 1  # draws of each random arm, each with its own seed (draw 0: the pool's seed)
    # samples: a sample count, or a fraction (< 1) of the scored pool; tokens / response_tokens: a token
    # total, filled in each arm's order until the next sample would pass it (nothing is skipped to fit).
    budget: float = 0.25
    budget_unit: str = "samples"  # samples (the paper's) | tokens | response_tokens
    measures: list[str] = field(default_factory=lambda: ["nll"])  # the first one is the primary measure
    base: bool = True  # evaluate the untrained base model too, as a reference row
    position_buckets: int = 4  # the position curve: evidence position 0..1 cut into this many buckets
    bootstrap: int = 10_000  # cluster-bootstrap replicates per interval
    criteria: AblateCriteria = field(default_factory=AblateCriteria)
    # A finished run's Trainer checkpoints hold only resume state (fp32 weights: twice its bf16 model);
    # removed once its model is written unless true.
    keep_checkpoints: bool = False
    output: str | None = None  # default: <output_dir>/ablation

    def __post_init__(self) -> None:
        each_of("ablate.arms", self.arms, ARMS)
        require(BASELINE in self.arms, "ablate.arms", f"must include `{BASELINE}`: every arm is compared with it")
        require(len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds), "ablate.seeds",
                f"must be distinct seeds, got {self.seeds}")
        for seed in self.seeds:
            at_least("ablate.seeds", seed, 0)
        at_least("ablate.subsets", self.subsets, 1)
        one_of("ablate.budget_unit", self.budget_unit, UNITS)
        above("ablate.budget", self.budget)
        if self.budget_unit == "samples":
            require(self.budget < 1 or self.budget == int(self.budget), "ablate.budget",
                    f"must be a whole sample count or a fraction below 1, got {self.budget:g}")
        else:
            at_least("ablate.budget", self.budget, 1)  # a token total, not a fraction
        each_of("ablate.measures", self.measures, MEASURES)
        at_least("ablate.position_buckets", self.position_buckets, 1)
        at_least("ablate.bootstrap", self.bootstrap, 100)

    def draws(self, arm: str) -> list[int | None]:
        """The subsets an arm is trained on: 0..subsets-1 for a drawn arm, [None] for any other."""
        return list(range(self.subsets)) if arm in DRAWN_ARMS else [None]


__all__ = ["AblateConfig", "AblateCriteria", "ARMS", "REFERENCE_ARMS", "BASELINE", "ORACLE", "CONTROL", "DRAWN_ARMS",
           "UNITS", "MEASURES"]
