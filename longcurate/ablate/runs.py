"""One run folder per arm and seed: a copy of the pool's RunConfig that trains on the arm's long file
plus the same short data, for the same number of optimiser steps from the same base model, and is
evaluated on the shared eval items. Its train and eval stages are the pipeline's own (`run_stage`),
so their completion steps make every run resumable: a finished model is never retrained.

Every run's eval reads the same items: the probes, built once in the ablation's eval folder with the
pool's seed, and the held-out samples the pool's synth wrote. A run's seed is its training seed (which
short samples, mixture and batch order), so its eval stage runs with the pool's seed, the one the item
files were made with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from longcurate.core.config import dump_yaml
from longcurate.core.errors import UserError
from longcurate.core.jsonl import atomic_open, done_marker, read_json_if_valid
from longcurate.core.layout import model_label

if TYPE_CHECKING:
    from longcurate.ablate.arms import Arm
    from longcurate.ablate.layout import AblationLayout
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.ablate")

TRAINED_LABEL = "checkpoint"  # the eval label of a run's trained model
BASE_LABEL = "base"  # the eval label of the base model


@dataclass(frozen=True)
class Run:
    """One model to evaluate: an arm trained with a seed, or the base model (arm `base`, seed None)."""

    arm: str
    seed: int | None
    train_cfg: RunConfig | None  # None for the base model (nothing to train)
    eval_cfg: RunConfig
    label: str

    @property
    def eval_dir(self) -> Path:
        """Where eval writes this run's per-item files: <run>/eval/<label>/{nll,probes}/."""
        return self.eval_cfg.layout().eval_model(self.label)


def check_pool_config(cfg: RunConfig) -> None:
    """What a fair comparison needs from the pool's config."""
    if cfg.train.max_steps <= 0:
        raise UserError("ablate: set train.max_steps > 0, so every arm trains for the same number of optimiser "
                        f"steps (it is {cfg.train.max_steps}: epochs would give bigger arms more steps)")
    if "short-only" in cfg.ablate.arms and not cfg.train.mix.short:
        raise UserError("ablate: the short-only arm needs short data (train.mix.short)")


def short_size(cfg: RunConfig, arms: dict[str, Arm]) -> int | None:
    """The short samples every arm takes, as a count, so that every arm (and the short-only one) trains
    on the same short data: `train.mix.short_size`, or `short_ratio` times the random arm's samples."""
    mc = cfg.train.mix
    if mc.short is None or mc.short_size is not None:
        return mc.short_size
    if mc.short_ratio is not None:
        return int(round(mc.short_ratio * arms["random"].samples))
    return None  # every short sample


def eval_section(cfg: RunConfig, ab: AblationLayout, models: list[str]):
    """The pool's eval config, evaluating `models` on the ablation's shared item files for the
    measures asked for."""
    e = cfg.eval
    return replace(e, models=list(models), run=list(cfg.ablate.measures), checkpoint=None, output_dir=None,
                   probes=replace(e.probes, output=str(ab.probes)), needle=replace(e.needle, output=str(ab.needle)))


def run_folder_config(cfg: RunConfig, folder: Path, ab: AblationLayout, models: list[str]) -> RunConfig:
    """The pool's config with every output in `folder` (the pool's own files are not touched), the
    base model and the eval items shared: the probes in the ablation's eval folder, the held-out
    samples the pool's synth wrote."""
    t = cfg.train
    train = replace(t, mix=replace(t.mix, output=None), tokenize=replace(t.tokenize, input=None, output=None),
                    dataset=None, output=None, checkpoints=None)
    synth = replace(cfg.synth, heldout_output=str(cfg.layout().heldout))
    return replace(cfg, output_dir=str(folder), stages=["train", "eval"], synth=synth, train=train,
                   eval=eval_section(cfg, ab, models))


def plan_runs(cfg: RunConfig, ab: AblationLayout, arms: dict[str, Arm]) -> list[Run]:
    """Every arm x seed (arm-major, so the first arm finishes first), then the base model."""
    shorts = short_size(cfg, arms)
    runs = []
    for arm in arms.values():
        for seed in cfg.ablate.seeds:
            base = run_folder_config(cfg, ab.run(arm.name, seed), ab, [TRAINED_LABEL])
            mix = replace(base.train.mix, long=[str(arm.path)], short_size=shorts, short_ratio=None)
            train_cfg = replace(base, seed=seed, train=replace(base.train, mix=mix))
            runs.append(Run(arm.name, seed, train_cfg, replace(train_cfg, seed=cfg.seed), TRAINED_LABEL))
    if cfg.ablate.base:  # the model every arm starts from: eval's "base" (the run's model) unless init_from
        init = cfg.train.init_from
        entry, label = (init, model_label(init)) if init else (BASE_LABEL, BASE_LABEL)
        runs.append(Run(BASE_LABEL, None, None, run_folder_config(cfg, ab.base_run, ab, [entry]), label))
    return runs


def trained_runs(cfg: RunConfig, ab: AblationLayout) -> Callable[[str], bool]:
    """`trained(arm)`: whether any seed of the arm has a finished model (train's completion marker)."""
    def trained(arm: str) -> bool:
        return any(done_marker(run_folder_config(cfg, ab.run(arm, s), ab, []).layout().model).exists()
                   for s in cfg.ablate.seeds)
    return trained


def execute(run: Run) -> dict[str, Any]:
    """Train (unless finished) and evaluate (what is not yet evaluated) one run; its stats."""
    from longcurate.eval.stage import run_stage as eval_stage
    from longcurate.train.stage import run_stage as train_stage

    cfg = run.train_cfg or run.eval_cfg
    layout = cfg.layout()
    layout.root.mkdir(parents=True, exist_ok=True)
    with atomic_open(layout.resolved_config) as f:
        f.write(dump_yaml(cfg))
    stats: dict[str, Any] = {}
    if run.train_cfg is not None:
        stats["train"] = train_stage(run.train_cfg)
    stats["eval"] = eval_stage(run.eval_cfg)
    return stats


def seen_tokens(run: Run) -> dict[str, int]:
    """What the optimiser saw in its steps (train's fit marker: samples and tokens per source over
    the global batches of `max_steps` steps, repeats counted), read from the model's marker."""
    if run.train_cfg is None:
        return {}
    marker = read_json_if_valid(done_marker(run.train_cfg.layout().model))
    return dict((marker or {}).get("seen") or {}) if isinstance(marker, dict) else {}


__all__ = ["Run", "TRAINED_LABEL", "BASE_LABEL", "check_pool_config", "short_size", "plan_runs", "execute",
           "seen_tokens", "eval_section", "run_folder_config", "trained_runs"]
