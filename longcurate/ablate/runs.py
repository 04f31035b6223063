"""One run folder per arm (draw) and seed: a copy of the pool's RunConfig, moved into the folder
(`RunConfig.moved_to`), that trains on the arm's long file plus the same short data, for the same
number of optimiser steps from the same base model, and is evaluated on the shared eval items. Its
train and eval stages are the pipeline's own (`run_stage`), so their steps make every run resumable:
a finished model is never retrained.

Every run's eval reads the same items: the probes, built once in the ablation's eval folder with the
pool's seed, and the held-out samples the pool's synth wrote. A run's seed is its training seed (which
short samples, mixture and batch order), so its eval stage runs with the pool's seed, the one the item
files were made with.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from longcurate.ablate.config import BASELINE
from longcurate.core.ablation_layout import AblationLayout
from longcurate.core.config import dump_yaml
from longcurate.core.errors import UserError
from longcurate.core.eval_layout import model_label
from longcurate.core.jsonl import atomic_open

if TYPE_CHECKING:
    from longcurate.ablate.arms import Arm
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.ablate")

TRAINED_LABEL = "checkpoint"  # the eval label of a run's trained model
BASE_LABEL = "base"  # the eval label (and row) of the base model


@dataclass(frozen=True)
class Run:
    """One model to evaluate: an arm (draw `subset` of a drawn arm) trained with a seed, or the base
    model (arm `base`, seed None)."""

    arm: str
    subset: int | None
    seed: int | None
    train_cfg: RunConfig | None  # None for the base model (nothing to train)
    eval_cfg: RunConfig
    label: str

    @property
    def eval_dir(self) -> Path:
        """Where eval writes this run's per-item files (the run layout's eval folder for its label)."""
        return self.eval_cfg.layout().eval_model(self.label)

    @property
    def key(self) -> str:
        """`gateau/seed-0`, `random/subset-1/seed-0`, `base`."""
        if self.seed is None:
            return self.arm
        return "/".join([self.arm, *([] if self.subset is None else [f"subset-{self.subset}"]), f"seed-{self.seed}"])


def check_pool_config(cfg: RunConfig) -> None:
    """What a fair comparison needs from the pool's config."""
    if cfg.ablate.budget_unit == "samples" and cfg.train.max_steps <= 0:
        raise UserError("ablate: with ablate.budget_unit=samples set train.max_steps > 0, so every arm trains for the "
                        f"same number of optimiser steps (it is {cfg.train.max_steps}: epochs would give the whole "
                        "pool's arm more steps); token budgets may train by epochs, each arm on its file as it is")
    if "short-only" in cfg.ablate.arms and not cfg.train.mix.short:
        raise UserError("ablate: the short-only arm needs short data (train.mix.short)")


def short_size(cfg: RunConfig, arms: list[Arm]) -> int | None:
    """The short samples every arm takes, as a count, so that every arm (and the short-only one) trains
    on the same short data: `train.mix.short_size`, or `short_ratio` times the samples of the random
    arm's first draw."""
    mc = cfg.train.mix
    if mc.short is None or mc.short_size is not None:
        return mc.short_size
    if mc.short_ratio is not None:
        first = next(a for a in arms if a.name == BASELINE and a.subset in (None, 0))
        return int(round(mc.short_ratio * first.samples))
    return None  # every short sample


def run_folder_config(cfg: RunConfig, folder: Path, ab: AblationLayout, models: list[str]) -> RunConfig:
    """The pool's config with every output in `folder` (the pool's own files are not touched), the
    base model and the eval items shared: the probes in the ablation's eval folder, the held-out
    samples the pool's synth wrote; eval runs the ablation's measures on `models`."""
    moved = cfg.moved_to(folder, {"synth.heldout_output": str(cfg.layout().heldout),
                                  "eval.probes.output": str(ab.probes), "eval.needle.output": str(ab.needle)})
    return replace(moved, stages=["train", "eval"],
                   eval=replace(moved.eval, models=list(models), run=list(cfg.ablate.measures)))


def plan_runs(cfg: RunConfig, ab: AblationLayout, arms: list[Arm]) -> list[Run]:
    """Every arm (draw) x seed, in arm order (so the first arm finishes first), then the base model."""
    shorts = short_size(cfg, arms)
    runs = []
    for arm in arms:
        for seed in cfg.ablate.seeds:
            base = run_folder_config(cfg, ab.run(arm.name, seed, arm.subset), ab, [TRAINED_LABEL])
            mix = replace(base.train.mix, long=[str(arm.path)], short_size=shorts, short_ratio=None)
            train_cfg = replace(base, seed=seed, train=replace(base.train, mix=mix))
            runs.append(Run(arm.name, arm.subset, seed, train_cfg, replace(train_cfg, seed=cfg.seed), TRAINED_LABEL))
    if cfg.ablate.base:  # the model every arm starts from: eval's "base" (the run's model) unless init_from
        init = cfg.train.init_from
        entry, label = (init, model_label(init)) if init else (BASE_LABEL, BASE_LABEL)
        runs.append(Run(BASE_LABEL, None, None, None, run_folder_config(cfg, ab.base_run, ab, [entry]), label))
    return runs


def trained_runs(cfg: RunConfig, ab: AblationLayout) -> Callable[[str, int | None], bool]:
    """`trained(arm, subset)`: whether any seed of that arm (draw) has a finished model (train's own
    account of its model, `train.stage.trained_model`)."""
    from longcurate.train.stage import trained_model

    def trained(arm: str, subset: int | None) -> bool:
        return any(trained_model(run_folder_config(cfg, ab.run(arm, s, subset), ab, [])) is not None
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
        if not run.train_cfg.ablate.keep_checkpoints:
            stats["checkpoints_removed_bytes"] = remove_trainer_checkpoints(run.train_cfg)
    stats["eval"] = eval_stage(run.eval_cfg)
    return stats


def remove_trainer_checkpoints(cfg: RunConfig) -> int:
    """Delete a run's Trainer checkpoints once its model is finished; bytes freed. They exist to resume
    training, which a finished model never does again (train skips it), so an ablation of many models
    would otherwise keep one fp32 copy of the weights per model for nothing."""
    from longcurate.train.stage import trained_model

    folder = cfg.layout().checkpoints
    if trained_model(cfg) is None or not folder.is_dir():
        return 0
    freed = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    shutil.rmtree(folder)
    log.info("removed %.1f MB of Trainer checkpoints from %s (the model is finished)", freed / 1e6, folder)
    return freed


def seen_tokens(run: Run) -> dict[str, int]:
    """What the optimiser saw in the run's steps (train's record of its finished model: samples, tokens
    and response tokens per source over the global batches of `max_steps` steps, repeats counted)."""
    from longcurate.train.stage import trained_model

    if run.train_cfg is None:
        return {}
    return dict((trained_model(run.train_cfg) or {}).get("seen") or {})


__all__ = ["Run", "TRAINED_LABEL", "BASE_LABEL", "check_pool_config", "short_size", "plan_runs", "execute",
           "seen_tokens", "run_folder_config", "trained_runs", "remove_trainer_checkpoints"]
