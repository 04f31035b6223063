"""The synth stage for `longcurate run` and `longcurate synth run`: write the samples (resumable), print
their report, and record the stage's manifest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from longcurate.core.config import to_dict
from longcurate.core.runinfo import write_manifest
from longcurate.synth.pipeline import run_synth
from longcurate.synth.report import report

if TYPE_CHECKING:
    from longcurate.config import RunConfig


def run_stage(cfg: RunConfig, progress: bool = True) -> dict:
    stats = run_synth(cfg, progress=progress)
    layout = cfg.layout()
    print(report(layout.samples))
    write_manifest(layout.manifest("synth"), "synth", to_dict(cfg), stats)
    return stats
