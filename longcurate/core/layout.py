"""Every path and naming rule of a run folder, in one place.

Stages ask the layout where things are, never each other: select reads `samples`, train reads the
top budget file, eval reads the trained `model`, and none of them knows how another names its files.

    <root>/                         output_dir
      config.resolved.yaml          the resolved config of the last `run`
      <stage>.manifest.json         one manifest per stage (synth, select, train, eval, run, ...)
      samples.jsonl                 synth (training samples, from the corpus's train part)
      heldout.jsonl                 synth (held-out IN2 samples, from the eval part, for eval)
      select/{hmg,cam,ranked}.jsonl, select/diagnostics.json
      select/<kind>.part-<i>-of-<n>.jsonl   per-shard part files before the merge
      budgets/<method>-<budget>.jsonl, budgets/budgets.jsonl (the index)
      mixture/mixture.jsonl, mixture/tokenized/
      train/checkpoint-N/           Trainer checkpoints (resume)
      checkpoint/                   the final model
      eval/{probes,needle}.jsonl    the eval items every model is asked
      eval/<label>/                 one model's eval results (`core.eval_layout.EvalModelFiles`)
      eval/contamination.json, eval/report.md, eval/plots/*.png   (`core.eval_layout.EvalFiles`)
      openai-cache/                 cached QA requests of the openai backend
      audit/pool.jsonl, audit/scores/{hmg,cam}.jsonl, audit/report.{json,md}, audit/{audit.png,figures.jsonl}   select audit
      ablation/                     `longcurate ablate` (`core.ablation_layout`; each run folder in it is a RunLayout)

Any of the first-level paths can be placed elsewhere by the config (e.g. `synth.output`,
`train.output`); `RunConfig.layout()` passes those choices in, and the budgets select writes
(`select.budgets`), which name its budget files. Without an `output_dir` (None: `runs/default`), a
placed output keeps what goes with it beside it, so an explicit `--output` writes nothing elsewhere:
synth's manifest, held-out samples (`<stem>.heldout.jsonl`) and QA cache beside its samples, the
Trainer's checkpoints (`<model>.train/`) and train's manifest beside the model, the needle items
beside the probes.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from longcurate.core.ablation_layout import AblationLayout
from longcurate.core.errors import UserError
from longcurate.core.eval_layout import EvalFiles

PathLike = str | os.PathLike
DEFAULT_OUTPUT_DIR = "runs/default"  # the run folder when the config names none


def parse_budget(spec: float | int | str) -> tuple[str, float]:
    """A budget's file label and value: `1000` -> ("1000", 1000.0) (a sample count); `0.1` -> ("0.1",
    0.1) (a fraction of the data)."""
    try:
        v = float(spec)
    except (TypeError, ValueError):
        raise UserError(f"budget must be a number, got {spec!r}") from None
    if not v > 0:
        raise UserError(f"budget must be positive, got {spec!r}")
    if v < 1:
        return f"{v:g}", v
    if v != int(v):
        raise UserError(f"budget {spec!r} is neither a whole size nor a fraction below 1")
    return str(int(v)), v


def budget_name(method: str, spec: float | int | str) -> str:
    """`gateau`, 1000 -> `gateau-1000.jsonl`."""
    return f"{method}-{parse_budget(spec)[0]}.jsonl"


def part_path(output: PathLike, index: int, count: int) -> Path:
    """A shard's part file beside the merged output: `hmg.jsonl` -> `hmg.part-3-of-8.jsonl`."""
    p = Path(output)
    stem = p.name[:-len(".jsonl")] if p.name.endswith(".jsonl") else p.name
    return p.with_name(f"{stem}.part-{index}-of-{count}.jsonl")


def part_paths(output: PathLike) -> list[Path]:
    """Every shard's part file beside `output` that exists, whatever the shard count it was made with."""
    p = Path(output)
    stem = p.name[:-len(".jsonl")] if p.name.endswith(".jsonl") else p.name
    name = re.compile(rf"{re.escape(stem)}\.part-\d+-of-\d+\.jsonl")
    return sorted(f for f in p.parent.glob(f"{glob.escape(stem)}.part-*") if name.fullmatch(f.name))


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run; build it with `RunLayout.under(output_dir, budgets, **placed_elsewhere)`."""

    root: Path
    samples: Path
    heldout: Path
    scores_dir: Path
    budgets_dir: Path
    mixture: Path
    tokenized: Path
    checkpoints: Path
    model: Path
    eval_dir: Path
    probes: Path
    needle: Path
    openai_cache: Path
    audit_dir: Path
    budget_specs: tuple[float, ...] = (1000,)  # the budgets select writes (sizes, or fractions < 1)
    stage_dirs: tuple[tuple[str, Path], ...] = ()  # (stage, folder) for a stage whose manifest is not at root

    @classmethod
    def under(cls, root: PathLike | None, budgets: Sequence[float] = (1000,), **placed: PathLike | None) -> "RunLayout":
        """The default layout under `root`; a non-empty `placed[name]` puts that path elsewhere. With no
        `root` (None), the run folder is `DEFAULT_OUTPUT_DIR` and a placed output keeps its companions
        beside it (`beside_placed`)."""
        unknown = set(placed) - {f.name for f in fields(cls)} - {"root", "budget_specs", "stage_dirs"}
        if unknown:
            raise TypeError(f"unknown layout path(s) {sorted(unknown)}")
        chosen = {k: Path(v) for k, v in placed.items() if v}
        stage_dirs: dict[str, Path] = {}
        if root is None:
            chosen, stage_dirs = beside_placed(chosen)
        root = Path(root if root is not None else DEFAULT_OUTPUT_DIR)
        eval_dir = chosen.get("eval_dir", root / "eval")
        defaults = {
            "samples": root / "samples.jsonl",
            "heldout": root / "heldout.jsonl",
            "scores_dir": root / "select",
            "budgets_dir": root / "budgets",
            "mixture": root / "mixture" / "mixture.jsonl",
            "tokenized": root / "mixture" / "tokenized",
            "checkpoints": root / "train",
            "model": root / "checkpoint",
            "eval_dir": eval_dir,
            "probes": EvalFiles(eval_dir).probes,
            "needle": EvalFiles(eval_dir).needle,
            "openai_cache": root / "openai-cache",
            "audit_dir": root / "audit",
        }
        return cls(root=root, budget_specs=tuple(budgets), stage_dirs=tuple(stage_dirs.items()),
                   **{k: chosen.get(k, v) for k, v in defaults.items()})

    # --- select ------------------------------------------------------------------------------
    def score(self, kind: str) -> Path:
        """The merged score file of `kind` (hmg, cam)."""
        return self.scores_dir / f"{kind}.jsonl"

    @property
    def ranked(self) -> Path:
        return self.scores_dir / "ranked.jsonl"

    @property
    def diagnostics(self) -> Path:
        return self.scores_dir / "diagnostics.json"

    @property
    def budget_index(self) -> Path:
        """budgets.jsonl: one line {file, samples} per budget file written (and the set's marker)."""
        return self.budgets_dir / "budgets.jsonl"

    def budget(self, method: str, spec: float | int | str) -> Path:
        return self.budgets_dir / budget_name(method, spec)

    def top_budget(self, method: str) -> Path:
        """The largest budget file of `method`: from the index when select wrote one (the file with
        the most samples), else named from the largest size in `budget_specs` (sizes before fractions)."""
        from longcurate.core.jsonl import read_jsonl

        if self.budget_index.exists():
            rows = [r for _, r in read_jsonl(self.budget_index) if str(r.get("file", "")).startswith(f"{method}-")]
            if rows:
                best = max(rows, key=lambda r: (int(r.get("samples", 0)), r["file"]))
                return self.budgets_dir / best["file"]
        values = [parse_budget(b)[1] for b in (self.budget_specs or (1000,))]
        sizes = [v for v in values if v >= 1] or values
        return self.budget(method, max(sizes))

    # --- select audit -----------------------------------------------------------------------
    @property
    def audit_pool(self) -> Path:
        """The planted pool (`select audit`): every base sample once per planted type."""
        return self.audit_dir / "pool.jsonl"

    @property
    def audit_scores(self) -> Path:
        """Where the pool's HMG and CAM scores go (the select score files of this folder)."""
        return self.audit_dir / "scores"

    @property
    def audit_report(self) -> Path:
        """report.json; report.md, audit.png and figures.jsonl beside it."""
        return self.audit_dir / "report.json"

    # --- eval --------------------------------------------------------------------------------
    @property
    def evals(self) -> EvalFiles:
        """The eval folder's files (contamination check, report, plots) and each model's folder."""
        return EvalFiles(self.eval_dir)

    def eval_model(self, label: str) -> Path:
        """Where one model's eval results go: eval/<label>/ (`EvalModelFiles` names what is inside)."""
        return self.evals.model(label).folder

    @property
    def report(self) -> Path:
        return self.evals.report

    def ablation(self, output: PathLike | None = None) -> AblationLayout:
        """The ablation's folder: `output` (ablate.output), else <root>/ablation."""
        return AblationLayout(Path(output) if output else self.root / "ablation")

    # --- run bookkeeping ---------------------------------------------------------------------
    def manifest(self, stage: str) -> Path:
        """The one manifest of a stage (or of `run`): <root>/<stage>.manifest.json, or beside the stage's
        placed output when the config names no output_dir (`beside_placed`)."""
        return dict(self.stage_dirs).get(stage, self.root) / f"{stage}.manifest.json"

    @property
    def resolved_config(self) -> Path:
        return self.root / "config.resolved.yaml"


def beside_placed(chosen: dict[str, Path]) -> tuple[dict[str, Path], dict[str, Path]]:
    """For a run without an output_dir: the paths that go with a placed output, put beside it unless
    placed themselves (synth's held-out samples and QA cache beside its samples, the checkpoints beside
    the model, the needle items beside the probes), and the folders of those stages' manifests."""
    out, stage_dirs = dict(chosen), {}
    if "samples" in chosen:
        samples = chosen["samples"]
        stem = samples.name[:-len(".jsonl")] if samples.name.endswith(".jsonl") else samples.stem
        out.setdefault("heldout", samples.with_name(f"{stem}.heldout.jsonl"))
        out.setdefault("openai_cache", samples.parent / "openai-cache")
        stage_dirs["synth"] = samples.parent
    if "model" in chosen:
        out.setdefault("checkpoints", chosen["model"].with_name(chosen["model"].name + ".train"))
        stage_dirs["train"] = chosen["model"].parent
    if "probes" in chosen and "eval_dir" not in chosen:
        out.setdefault("needle", EvalFiles(chosen["probes"].parent).needle)
    return out, stage_dirs


__all__ = ["RunLayout", "DEFAULT_OUTPUT_DIR", "beside_placed", "parse_budget", "budget_name",
           "part_path", "part_paths"]
