"""Every path of an ablation (`longcurate ablate`), named here and nowhere else; `RunLayout.ablation`
places it in a run folder. Each run folder inside it is a `core.layout.RunLayout`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from longcurate.core.eval_layout import EvalFiles


@dataclass(frozen=True)
class AblationLayout:
    """Every path of an ablation (`ablate.output`, default `<output_dir>/ablation`):

        arms/<arm>.jsonl (+ .done)               a deterministic arm's long samples (Sample records)
        arms/<arm>.subset-<k>.jsonl (+ .done)    a drawn arm's (random, control) long samples, draw k
        eval/probes.jsonl, eval/needle.jsonl     the eval items every run reads (built once)
        runs/<arm>/seed-<s>/                     one run folder (a RunLayout) per arm and training seed
        runs/<arm>/subset-<k>/seed-<s>/          ... per drawn arm, draw and seed
        runs/base/                               the untrained base model's evaluation
        report.json (+ .done), report.md, plots/<name>.png
        ablation.manifest.json                   what ran, with timings
    """

    root: Path

    def arm_file(self, arm: str, subset: int | None = None) -> Path:
        name = arm if subset is None else f"{arm}.subset-{subset}"
        return self.root / "arms" / f"{name}.jsonl"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def probes(self) -> Path:
        return EvalFiles(self.eval_dir).probes

    @property
    def needle(self) -> Path:
        return EvalFiles(self.eval_dir).needle

    def run(self, arm: str, seed: int, subset: int | None = None) -> Path:
        folder = self.root / "runs" / arm
        return (folder if subset is None else folder / f"subset-{subset}") / f"seed-{seed}"

    @property
    def base_run(self) -> Path:
        return self.root / "runs" / "base"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def plot(self, name: str) -> Path:
        """A figure of the report (`report.md` links it relative to the ablation folder)."""
        return self.plots / f"{name}.png"

    @property
    def manifest(self) -> Path:
        return self.root / "ablation.manifest.json"


__all__ = ["AblationLayout"]
