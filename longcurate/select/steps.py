"""Where the select stage reads and writes (from the run's layout), and the step of each output as the
step runner runs it (`core.runner.StepSpec`), one policy per step:

    output                                policy  settings
    a shard's part file (resumable)       refuse  score_settings: models, prompts, segments, input digest, limit,
                                                  how the input reads (input_format, split, turns),
                                                  recorded once for all shards (<score>.settings.json)
    a merged score file (select/<kind>)   redo    score_settings (+ hmg_scale for HMG, importance_temperature for CAM)
    select/ranked.jsonl                   redo    alpha, normalize, digests of the score files
    budgets/budgets.jsonl (the set)       redo    budgets, methods, seed, overflow, digests of the inputs

Inputs are recorded by the digest of their content (`source_digest`), never by their path: a samples
file edited in place is noticed, a moved one is not. So a re-run with the same settings redoes
nothing, another `alpha` redoes rank and budgets, another `hmg_scale` or `importance_temperature`
re-merges the parts without scoring, and another window, model or input is refused rather than
mixed into scores made with the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.completion import settings_file
from longcurate.core.config import to_dict
from longcurate.core.errors import UserError
from longcurate.core.jsonl import read_json_if_valid
from longcurate.core.layout import part_path, part_paths
from longcurate.core.reader import source_digest
from longcurate.core.runner import StepSpec, holds_records
from longcurate.select.conversations import SampleReading

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun

KINDS = ("hmg", "cam")


def input_path(cfg: SelectRun) -> Path:
    """The samples to score: `select.input`, else the run's samples file."""
    return Path(cfg.select.input) if cfg.select.input else cfg.layout().samples


def sample_reading(cfg: SelectRun) -> SampleReading:
    """How the input's records read as samples: `select.input_format`, `split`, `turns`."""
    return SampleReading(cfg.select.input_format, cfg.select.split, cfg.select.turns)


def command_output(cfg: SelectRun, default: Path) -> Path:
    """`select.output` (the output of the one command at hand, e.g. `--output`), else `default`."""
    return Path(cfg.select.output) if cfg.select.output else default


def cam_scores(cfg: SelectRun) -> Path | None:
    """The CAM score file the stage ranks and diagnoses with; None when `select.cam` is off."""
    return cfg.layout().score("cam") if cfg.select.cam else None


def model_b_name(cfg: SelectRun) -> str:
    return cfg.select.model or cfg.model


def score_limit(cfg: SelectRun, kind: str) -> int | None:
    """How many valid records `kind` scores: `limit`, and for CAM also `cam_limit` (the smaller)."""
    sel = cfg.select
    lims = [x for x in (sel.limit, sel.cam_limit if kind == "cam" else None) if x is not None]
    return min(lims) if lims else None


def score_settings(cfg: SelectRun, kind: str) -> dict[str, Any]:
    """The settings that decide a score file's values (not how fast they are computed)."""
    sel = cfg.select
    inp = input_path(cfg)
    common = {"input_sha256": source_digest(inp) or str(inp), "model_b": model_b_name(cfg), "dtype": sel.dtype,
              "prompt_format": sel.prompt_format, "max_length": sel.max_length, "overlong": sel.overlong,
              "segment_tokens": sel.segment_tokens, "limit": score_limit(cfg, kind), "seed": cfg.seed,
              "input_format": to_dict(sel.input_format), "split": sel.split, "turns": sel.turns}
    if kind == "hmg":
        # response_alone: what IFD's PPL(y) conditions on (the records carry IFD since issue 11)
        return {**common, "model_a": sel.model_a, "window": sel.window, "rope_scaling": sel.rope_scaling,
                "response_alone": "empty prompt"}
    return {**common, "max_segments": sel.max_segments, "layers": sel.layers, "cas_metric": sel.cas_metric}


@dataclass(frozen=True)
class ScoreSteps:
    """The steps of one score file (`kind` hmg or cam): its shards' part files and their merge."""

    kind: str
    output: Path
    settings: dict[str, Any]  # score_settings
    hmg_scale: str
    importance_temperature: float = 1.0

    @classmethod
    def of(cls, cfg: SelectRun, kind: str) -> "ScoreSteps":
        """The steps of `kind`'s score file under this config's settings."""
        if kind not in KINDS:
            raise UserError(f"unknown score kind {kind!r}; use one of {KINDS}")
        output = command_output(cfg, cfg.layout().score(kind))
        return cls(kind, output, score_settings(cfg, kind), cfg.select.hmg_scale, cfg.select.importance_temperature)

    @classmethod
    def recorded(cls, cfg: SelectRun, kind: str) -> "ScoreSteps":
        """The steps under the settings the shards scored with (recorded when scoring began), for a
        merge that runs apart from them with fewer flags."""
        steps = cls.of(cfg, kind)
        recorded = read_json_if_valid(settings_file(steps.output))
        if not isinstance(recorded, dict):
            raise UserError(f"nothing was scored into {steps.output} yet (no {settings_file(steps.output)})")
        return cls(kind, steps.output, recorded, steps.hmg_scale, steps.importance_temperature)

    def input_changed(self) -> bool:
        """Whether the score file was begun on another input's content (its recorded settings say so)."""
        recorded = read_json_if_valid(settings_file(self.output))
        return isinstance(recorded, dict) and recorded.get("input_sha256") != self.settings.get("input_sha256")

    def scored_any(self) -> bool:
        """Whether any score was made under the recorded settings: a part file (of any shard count) or
        the merged file holds a record."""
        return any(holds_records(p) for p in (*part_paths(self.output), self.output))

    def part(self, index: int, count: int) -> StepSpec:
        """Shard `index` of `count`, appended a chunk at a time and resumed by a rerun. Its settings are
        recorded once for every shard of the score file (`<output>.settings.json`) before any part's
        first record; policy refuse: scores are expensive and appended to, so a part is neither begun
        nor mixed under settings the score file was begun with, nor silently thrown away (unless no
        score was made yet: `scored_any`). Its marker also holds its counts."""
        return StepSpec(f"{self.kind} shard {index} of {count}", part_path(self.output, index, count), self.settings,
                        on_change="refuse", resumable=True, begun_at=settings_file(self.output),
                        partial=self.scored_any)

    def parts(self, count: int) -> list[StepSpec]:
        return [self.part(k, count) for k in range(count)]

    def merged(self, again: bool = False) -> StepSpec:
        """Policy redo: the merged file records the scoring settings and what the merge applied (HMG:
        the `hmg_scale` of its normalisation; CAM: the importance temperature), so changing only those
        re-merges the parts (nothing is re-scored). `again`: merge even when it is complete (what the
        `select merge` command asks for, e.g. after a shard was rerun)."""
        extra = ({"hmg_scale": self.hmg_scale} if self.kind == "hmg"
                 else {"importance_temperature": self.importance_temperature})
        return StepSpec(f"{self.kind} merge", self.output, {**self.settings, **extra},
                        done_when=(lambda stats: False) if again else None)


def rank_spec(output: Path, settings: dict[str, Any]) -> StepSpec:
    """Policy redo: the ranking is cheap and derived; `settings` are alpha, normalize and the digests
    of the score files it read, so new scores or another alpha rank again."""
    return StepSpec("rank", output, settings)


def budget_spec(index: Path, settings: dict[str, Any]) -> StepSpec:
    """Policy redo, marked on the budget index (budgets.jsonl) for the whole set of budget files:
    cheap copies of records, redone (and files no longer asked for removed) when the budgets, methods,
    seed, input or ranking change. The budget files have no quarantine of their own."""
    return StepSpec("budgets", index, settings, quarantine=False)


__all__ = ["KINDS", "ScoreSteps", "input_path", "sample_reading", "command_output", "cam_scores", "model_b_name",
           "score_limit", "score_settings", "rank_spec", "budget_spec"]
