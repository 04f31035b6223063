"""Configuration of `select audit` (`select.audit`): the planted pool, the figures' variants and the
pass criteria. The criteria are part of the config so that they are fixed before a run is seen; the
report prints them first and marks each as passed or failed by its point estimate (with its interval
beside it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from longcurate.core.planted import PLANTED_TYPES
from longcurate.core.rules import above, at_least, between, each_of, require


@dataclass
class AuditCriteria:
    """What a score that finds long-range dependency must do on the planted pool (k = pool / types)."""

    far_top_share_min: float = 0.60  # `far` >= 60% of the top k (gateau, HMG); chance is 1 / types
    auroc_far_local_min: float = 0.80  # AUROC(far vs local) (gateau, HMG)
    absent_top_share_max: float = 0.15  # `absent` <= 15% of the top k (gateau, HMG)
    wrong_top_share_max: float = 0.15  # `wrong` <= 15% of the top k (gateau, HMG)
    far_response_spearman_max: float = 0.30  # |Spearman with response tokens| inside `far` (gateau, HMG)
    cas_auroc_far_absent_min: float = 0.70  # AUROC(far vs absent) (CAS)

    def __post_init__(self) -> None:
        for name in ("far_top_share_min", "auroc_far_local_min", "absent_top_share_max", "wrong_top_share_max",
                     "far_response_spearman_max", "cas_auroc_far_absent_min"):
            between(f"select.audit.criteria.{name}", getattr(self, name), 0.0, 1.0)


@dataclass
class AuditConfig:
    input: str | None = None  # samples to plant from; default: the run's samples (synth's training part)
    output_dir: str | None = None  # default <output_dir>/audit
    base_samples: int = 40  # at least this many base samples, each planted once per type (pool = bases x types)
    # default: far, local, absent, wrong when the input has gold spans; natural, absent, wrong otherwise
    types: list[str] | None = None
    window: int | None = None  # θ_A's view that far / local are placed against; default select.window
    margin: int = 32  # tokens the evidence keeps clear of the window's edge
    stratum_size: int = 4  # samples per answer-length bucket of a question type (donors come from it)
    temperatures: list[float] = field(default_factory=lambda: [0.25, 4.0])  # CAS importance temperatures besides 1
    release_temperature: bool = True  # also CAS with the release's importance (temperature (L-1)/R)
    bootstrap: int = 1000  # resamples of base samples for the 95% intervals
    criteria: AuditCriteria = field(default_factory=AuditCriteria)

    def __post_init__(self) -> None:
        for name, low in (("base_samples", 2), ("margin", 0), ("stratum_size", 2), ("bootstrap", 100)):
            at_least(f"select.audit.{name}", getattr(self, name), low)
        at_least("select.audit.window", self.window, 1, optional=True)
        for t in self.temperatures:
            above("select.audit.temperatures", t)
        if self.types is not None:
            each_of("select.audit.types", self.types, PLANTED_TYPES)
            require(len(self.types) >= 2, "select.audit.types", f"must name at least two types, got {self.types}")


__all__ = ["AuditConfig", "AuditCriteria"]
