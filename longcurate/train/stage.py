"""The train stage over files: mix the top budget with short chat data, tokenize, train, save.

Paths left empty resolve inside `output_dir`:
    long input   the select stage's largest `gateau-<budget>.jsonl` in `select.budget_dir` (default budgets/)
    mixture      mixture/mixture.jsonl (+ .manifest.json)
    tokenized    mixture/tokenized (a datasets folder)
    checkpoints  train/checkpoint-N (Trainer checkpoints, resume)
    final model  checkpoint/ (safetensors + tokenizer; eval loads this folder)
Each step resumes: mix and tokenize return their saved stats when their inputs are unchanged, and a
finished model folder (its `longcurate_train.json`) makes training a no-op.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from longcurate.core.config import to_dict

log = logging.getLogger("longcurate.train")


def mixture_path(cfg) -> Path:
    return cfg.path(cfg.train.mix.output, "mixture/mixture.jsonl")


def tokenized_path(cfg) -> Path:
    return cfg.path(cfg.train.dataset or cfg.train.tokenize.output, "mixture/tokenized")


def final_path(cfg) -> Path:
    return cfg.path(cfg.train.output, "checkpoint")


def checkpoints_path(cfg) -> Path:
    return cfg.path(cfg.train.checkpoints, "train")


def base_model(cfg) -> str:
    return cfg.train.init_from or cfg.model


def default_long_inputs(cfg) -> list[str]:
    """The select stage's top (largest) GATEAU budget file.

    Read from select's `budgets.jsonl` index when it exists (the gateau file with most samples),
    else `gateau-<largest of select.budgets>.jsonl` in `select.budget_dir` (default <output_dir>/budgets)."""
    from longcurate.core.jsonl import read_jsonl
    from longcurate.select.budget import parse_budget
    from longcurate.select.stage import budget_dir

    folder = budget_dir(cfg)
    index = folder / "budgets.jsonl"
    if index.exists():
        gateau = [r for _, r in read_jsonl(index) if str(r.get("file", "")).startswith("gateau-")]
        if gateau:
            best = max(gateau, key=lambda r: (int(r.get("samples", 0)), r["file"]))
            return [str(folder / best["file"])]
    budgets = [float(b) for b in (cfg.select.budgets or [1000])]
    sizes = [b for b in budgets if b >= 1] or budgets
    return [str(folder / f"gateau-{parse_budget(max(sizes))[0]}.jsonl")]


def run_mix(cfg, progress: bool = True) -> dict[str, Any]:
    from longcurate.train.mix import build_mixture

    mc = cfg.train.mix
    long_paths = list(mc.long) or default_long_inputs(cfg)
    out = mixture_path(cfg)
    manifest = build_mixture(long_paths, mc.short, str(out), short_size=mc.short_size, short_ratio=mc.short_ratio,
                             seed=cfg.seed, limit=mc.limit, progress=progress)
    log.info("mixture: %d long + %d short -> %s%s", manifest["long"], manifest["short"], out,
             " (unchanged)" if manifest.get("resumed") else "")
    return manifest


def run_tokenize(cfg, tokenizer=None, progress: bool = True) -> dict[str, Any]:
    from longcurate.core.models import load_tokenizer
    from longcurate.train.tokenize import tokenize_mixture

    tk = cfg.train.tokenize
    src = Path(tk.input) if tk.input else mixture_path(cfg)
    if not src.exists():
        raise FileNotFoundError(f"mixture not found: {src} (run `longcurate mix` first)")
    tokenizer = tokenizer or load_tokenizer(base_model(cfg), cfg.allow_download, cfg.trust_remote_code)
    out = cfg.path(tk.output, "mixture/tokenized")
    stats = tokenize_mixture(str(src), str(out), tokenizer, template=tk.template, max_length=tk.max_length,
                             overlong=tk.overlong, num_proc=tk.num_proc, limit=tk.limit, progress=progress)
    log.info("tokenized: %d kept (%d truncated, %d skipped, %d rejected) %s -> %s", stats["kept"],
             stats["truncated"], stats["skipped"], stats["rejected"], stats.get("by_source"), out)
    return stats


def run_train(cfg, *, model=None, tokenizer=None) -> dict[str, Any]:
    from longcurate.train.trainer import DONE_FILE, is_trained, train

    out = final_path(cfg)
    if is_trained(out):
        log.info("train: %s is complete; nothing to do", out)
        return json.loads((out / DONE_FILE).read_text(encoding="utf-8")) | {"skipped": True}
    return train(tokenized_path(cfg), out, cfg.train, model_name=base_model(cfg), checkpoints=checkpoints_path(cfg),
                 seed=cfg.seed, model=model, tokenizer=tokenizer, allow_download=cfg.allow_download,
                 trust_remote_code=cfg.trust_remote_code)


def run_stage(cfg) -> dict[str, Any]:
    """mix -> tokenize -> train; a re-run with a finished model folder redoes nothing."""
    from longcurate.core.runinfo import write_manifest
    from longcurate.train.trainer import dist_env, is_trained

    out = final_path(cfg)
    manifest = Path(cfg.output_dir) / "train.manifest.json"
    if is_trained(out) and manifest.exists():
        log.info("train: %s is complete; nothing to do", out)
        return json.loads(manifest.read_text(encoding="utf-8")).get("stats", {}) | {"skipped": True}
    rank, world = dist_env()
    if world > 1 and not (tokenized_path(cfg) / "dataset_info.json").exists():
        raise RuntimeError("under a multi-process launcher, run `longcurate mix` and `longcurate tokenize` "
                           "first (one process), then launch `longcurate train`")
    stats: dict[str, Any] = {}
    if cfg.train.dataset is None and world == 1:
        stats["mix"] = _mix_summary(run_mix(cfg))
        stats["tokenize"] = {k: v for k, v in run_tokenize(cfg).items() if k != "params"}
    stats["train"] = {k: v for k, v in run_train(cfg).items() if k != "log_history"}
    if rank == 0:
        write_manifest(manifest, "train", to_dict(cfg.train), stats)
    return stats


def _mix_summary(m: dict[str, Any]) -> dict[str, Any]:
    keep = ("long", "short", "total", "duplicates", "rejected", "rejected_by_reason", "short_shortfall", "resumed")
    return {k: m[k] for k in keep if k in m} | {"inputs": sorted(m.get("sources", {}))}
