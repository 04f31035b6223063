"""The synth stage for `longcurate run` and `longcurate synth run`: write the samples and the held-out
samples (resumable), print their reports, and record the stage's manifest. A file left with pending
samples stops the stage (and `longcurate run`) with "incomplete: N pending, rerun to retry"; its
manifest records the partial stats."""

from __future__ import annotations

from typing import TYPE_CHECKING

from longcurate.core.config import to_dict
from longcurate.core.errors import UserError
from longcurate.core.runinfo import write_manifest
from longcurate.synth.pipeline import incomplete_message, run_synth
from longcurate.synth.report import report

if TYPE_CHECKING:
    from longcurate.config import RunConfig


class SynthIncomplete(UserError):
    """Samples are pending (the endpoint failed, or a cap or the circuit breaker stopped the backend):
    the next run continues where this one stopped."""


def run_stage(cfg: RunConfig, progress: bool = True) -> dict:
    stats = run_synth(cfg, progress=progress)
    layout = cfg.layout()
    print(report(layout.samples))
    if cfg.synth.heldout_samples > 0:
        print(report(layout.heldout))
    write_manifest(layout.manifest("synth"), "synth", to_dict(cfg), stats)
    unfinished = [s for s in (stats, stats.get("heldout")) if s and not s.get("complete", True)]
    if unfinished:
        raise SynthIncomplete("; ".join(f"{s['output']}: {incomplete_message(s)}" for s in unfinished))
    return stats
