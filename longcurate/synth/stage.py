"""The synth stage for `longcurate run` and `longcurate synth run`: write the samples and the held-out
samples (resumable), print their reports, and record the stage's manifest. A file left with pending
samples has `complete: False` in its stats (the manifest records the partial stats); the command
then exits "incomplete" (`core.runner.raise_if_incomplete`) and `longcurate run` stops there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from longcurate.core.runinfo import write_manifest
from longcurate.synth.pipeline import run_synth
from longcurate.synth.report import report

if TYPE_CHECKING:
    from longcurate.synth.config import SynthRun


def run_stage(cfg: SynthRun, progress: bool = True) -> dict:
    stats = run_synth(cfg, progress=progress)
    layout = cfg.layout()
    print(report(layout.samples))
    if cfg.synth.heldout_samples > 0:
        print(report(layout.heldout))
    write_manifest(layout.manifest("synth"), "synth", cfg, stats)
    return stats
