"""Every path of an ablation, in one place (each run folder's own paths come from its RunConfig.layout()).

    <output_dir>/ablation/                 (ablate.output)
      arms/<arm>.jsonl (+ .done)           the long samples of each arm (Sample records)
      eval/probes.jsonl, eval/needle.jsonl the eval items every run reads (built once)
      runs/<arm>/seed-<s>/                 one run folder per arm and seed (mixture, checkpoint, eval, ...)
      runs/base/                           the untrained base model's evaluation
      report.json (+ .done), report.md, plots/*.png
      ablation.manifest.json               what ran, with timings
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from longcurate.config import RunConfig

BASE_RUN = "base"


@dataclass(frozen=True)
class AblationLayout:
    root: Path

    @classmethod
    def of(cls, cfg: RunConfig) -> "AblationLayout":
        return cls(Path(cfg.ablate.output) if cfg.ablate.output else cfg.layout().root / "ablation")

    def arm_file(self, arm: str) -> Path:
        return self.root / "arms" / f"{arm}.jsonl"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def probes(self) -> Path:
        return self.eval_dir / "probes.jsonl"

    @property
    def needle(self) -> Path:
        return self.eval_dir / "needle.jsonl"

    def run(self, arm: str, seed: int) -> Path:
        return self.root / "runs" / arm / f"seed-{seed}"

    @property
    def base_run(self) -> Path:
        return self.root / "runs" / BASE_RUN

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def manifest(self) -> Path:
        return self.root / "ablation.manifest.json"


__all__ = ["AblationLayout", "BASE_RUN"]
