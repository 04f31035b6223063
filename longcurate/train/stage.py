"""The train stage over the run's files: mix the top budget with short chat data, tokenize, fit, save.

Every path comes from the run's layout (`cfg.layout()`):
    long input   the largest gateau budget file (`layout.top_budget`), unless `train.mix.long` names files
    mixture      mixture/mixture.jsonl            step `train mix`       (mix.mix_spec, redo on change)
    tokenized    mixture/tokenized/ (datasets)    step `train tokenize`  (tokenize.tokenize_spec, redo on change)
    checkpoints  train/checkpoint-N (Trainer checkpoints, resumed under the same settings only; the newest
                 complete one resumes, torn ones are moved aside; optimizer state only where resume needs it)
    model        checkpoint/ (safetensors + tokenizer; eval loads it)   step `train fit` (fit_spec, refuse)
Every step runs through the step runner (`core.runner`); its marker (`<output>.done`) holds its stats
and settings, so a re-run with equal settings does nothing; `train.manifest.json` (written by
`run_stage` only) records the whole stage.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.completion import settings_file
from longcurate.core.config import to_dict
from longcurate.core.errors import UserError
from longcurate.core.runinfo import write_manifest
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.train.launch import dist_env

if TYPE_CHECKING:
    from longcurate.train.config import TrainRun

log = logging.getLogger("longcurate.train")

# Train settings that do not change the trained weights: where files go, how often to log or save,
# how to launch and shard (the loss is the same for any world size), whether to resume.
NOT_FIT_SETTINGS = ("mix", "tokenize", "dataset", "init_from", "output", "checkpoints", "gradient_checkpointing",
                    "deepspeed", "fsdp", "fsdp_config", "ddp_backend", "report_to", "logging_steps", "save_steps",
                    "save_total_limit", "resume", "dataloader_num_workers")


def base_model(cfg: TrainRun) -> str:
    return cfg.train.init_from or cfg.model


def default_long_inputs(cfg: TrainRun) -> list[str]:
    """The select stage's top (largest) GATEAU budget file, as the run's layout names it."""
    return [str(cfg.layout().top_budget("gateau"))]


def run_mix(cfg: TrainRun, progress: bool = True) -> dict[str, Any]:
    from longcurate.train.mix import build_mixture

    mc = cfg.train.mix
    out = cfg.layout().mixture
    stats = build_mixture(list(mc.long) or default_long_inputs(cfg), mc.short, out, short_size=mc.short_size,
                          short_ratio=mc.short_ratio, seed=cfg.seed, limit=mc.limit, progress=progress,
                          allow_download=cfg.allow_download, formats={"long": mc.long_format, "short": mc.short_format})
    log.info("mixture: %d long + %d short -> %s%s", stats["long"], stats["short"], out,
             " (unchanged)" if stats.get("skipped") else "")
    return stats


def run_tokenize(cfg: TrainRun, tokenizer=None, progress: bool = True) -> dict[str, Any]:
    from longcurate.core.models import load_tokenizer
    from longcurate.train.tokenize import tokenize_mixture

    tk, layout = cfg.train.tokenize, cfg.layout()
    src = Path(tk.input) if tk.input else layout.mixture
    if not src.exists() and not cfg.allow_download:
        raise FileNotFoundError(2, "mixture not found (run `longcurate train mix` first)", str(src))
    if tokenizer is None:
        tokenizer = load_tokenizer(base_model(cfg), cfg.allow_download, cfg.trust_remote_code)
    stats = tokenize_mixture(src, layout.tokenized, tokenizer, template=tk.template, max_length=tk.max_length,
                             overlong=tk.overlong, num_proc=tk.num_proc, limit=tk.limit, progress=progress,
                             allow_download=cfg.allow_download)
    log.info("tokenized: %d kept (%d truncated, %d skipped, %d rejected) %s -> %s%s", stats["kept"],
             stats["truncated"], stats["skipped_samples"], stats["rejected"], stats.get("by_source"),
             layout.tokenized, " (unchanged)" if stats.get("skipped") else "")
    return stats


def fit_spec(cfg: TrainRun) -> StepSpec:
    """The trained model as a step of the step runner. Policy `refuse`: training is the expensive step,
    and a finished model asked for with other data or settings is kept and the run stops naming what
    changed (use another `train.output` / output_dir, or delete the model to retrain). Settings: the
    tokenized data (digest of its Arrow files), the base model, the seed and every train setting that
    changes the weights (not NOT_FIT_SETTINGS). With `train.resume: auto` it is resumable: its partial
    output is the newest complete checkpoint (`resume_point`), resumed only when the checkpoints were
    begun under the same settings (recorded beside them, `<checkpoints>.settings.json`). The main
    process holds the model's and the checkpoints' locks and writes the marker."""
    from longcurate.core.reader import source_digest

    layout = cfg.layout()
    if not layout.tokenized.exists():
        raise FileNotFoundError(f"tokenized dataset not found: {layout.tokenized} "
                                "(run `longcurate train tokenize` first)")
    settings = {"dataset_sha256": source_digest(layout.tokenized),
                "base_model": base_model(cfg), "seed": cfg.seed,
                **{k: v for k, v in to_dict(cfg.train).items() if k not in NOT_FIT_SETTINGS}}
    auto = cfg.train.resume == "auto"
    return StepSpec("train fit", layout.model, settings, on_change="refuse", resumable=auto,
                    begun_at=settings_file(layout.checkpoints),
                    partial=lambda: resume_point(cfg, move=False) is not None,
                    also_locks=(layout.checkpoints,), quarantine=False, main_process=dist_env()[0] == 0)


def resume_point(cfg: TrainRun, move: bool = True) -> str | None:
    """The checkpoint to resume from: `train.resume` names one, `never` none, `auto` the newest
    complete one in the checkpoints folder (with `move`, the main process moves incomplete ones aside:
    `checkpoints.py`); None when there is none."""
    from longcurate.train.checkpoints import resumable_checkpoint
    from longcurate.train.launch import fsdp_settings, native_fsdp

    tc = cfg.train
    if tc.resume in ("never", "", None):
        return None
    if tc.resume != "auto":
        return tc.resume
    # A model sharded at load time is checkpointed without optimizer state (launch.training_arguments).
    return resumable_checkpoint(cfg.layout().checkpoints,
                                need_optimizer=not native_fsdp(fsdp_settings(tc.fsdp, tc.fsdp_config)),
                                move=move and dist_env()[0] == 0)


def run_fit(cfg: TrainRun, *, model=None, tokenizer=None, callbacks: list | None = None) -> dict[str, Any]:
    """Train unless the model is finished with these settings (`fit_spec`); once the model is written
    the checkpoints' optimizer state, needed only to resume, is removed."""
    from longcurate.train.checkpoints import prune_optimizer_state
    from longcurate.train.trainer import train

    layout = cfg.layout()

    def fit(run: StepRun) -> dict[str, Any]:
        stats = train(layout.tokenized, run.output, cfg.train, model_name=base_model(cfg),
                      checkpoints=layout.checkpoints, resume=resume_point(cfg), seed=cfg.seed, model=model,
                      tokenizer=tokenizer, allow_download=cfg.allow_download,
                      trust_remote_code=cfg.trust_remote_code, callbacks=callbacks)
        if run.spec.main_process:
            freed = prune_optimizer_state(layout.checkpoints, keep=None)
            if freed:
                log.info("removed %.1f MB of optimizer state from %s (the model is finished)", freed / 1e6,
                         layout.checkpoints)
        return stats

    return run_step(fit_spec(cfg), fit)


def run_stage(cfg: TrainRun) -> dict[str, Any]:
    """mix -> tokenize -> fit; a re-run with equal settings redoes (and rewrites) nothing."""
    rank, world = dist_env()
    layout = cfg.layout()
    if world > 1 and not (layout.tokenized / "dataset_info.json").exists():
        raise UserError("under a multi-process launcher, run `longcurate train mix` and `longcurate train tokenize` "
                        "first (one process), then launch `longcurate train fit`")
    stats: dict[str, Any] = {}
    if cfg.train.dataset is None and world == 1:
        stats["mix"] = mix_summary(run_mix(cfg))
        stats["tokenize"] = run_tokenize(cfg)
    stats["train"] = {k: v for k, v in run_fit(cfg).items() if k != "log_history"}
    skipped = all(s.get("skipped") is True for s in stats.values())
    manifest = layout.manifest("train")
    if rank == 0 and not (skipped and manifest.exists()):
        write_manifest(manifest, "train", cfg, stats)
    return stats | ({"skipped": True} if skipped else {})


def mix_summary(m: dict[str, Any]) -> dict[str, Any]:
    keep = ("long", "short", "total", "duplicates", "rejected", "rejected_by_reason", "short_shortfall", "skipped")
    return {k: m[k] for k in keep if k in m} | {"inputs": sorted(m.get("sources", {}))}
