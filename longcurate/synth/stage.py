"""The synth stage for `longcurate run`: write the samples (resumable), then print their report."""

from __future__ import annotations

from longcurate.core.config import to_dict
from longcurate.core.runinfo import write_manifest
from longcurate.synth.pipeline import output_path, run_synth
from longcurate.synth.report import report


def run_stage(cfg, progress: bool = True) -> dict:
    stats = run_synth(cfg, progress=progress)
    out = output_path(cfg)
    print(report(out))
    write_manifest(out.with_name("synth.manifest.json"), "synth", to_dict(cfg), stats)
    return stats
