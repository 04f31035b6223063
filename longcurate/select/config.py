"""Configuration of the select stage (defaults live here).

Paths left empty resolve inside `output_dir`: input `samples.jsonl`, scores under `select/`,
budgets under `budgets/`. `configs/paper-7b.yaml` lists what the published setting changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from longcurate.select.audit_config import AuditConfig


@dataclass
class SelectConfig:
    input: str | None = None  # samples to score; default <output_dir>/samples.jsonl
    output: str | None = None  # output of the command at hand (score file, ranked file, ...)
    scores_dir: str | None = None  # default <output_dir>/select (hmg.jsonl, cam.jsonl, ranked.jsonl)
    budget_dir: str | None = None  # default <output_dir>/budgets
    limit: int | None = None  # score at most this many records (the first N valid ones)

    # --- models ---
    model: str | None = None  # θ_B (long model); default: the run's `model`
    model_a: str | None = None  # θ_A as a separate checkpoint; default: θ_B's checkpoint, limited
    window: int | None = 1024  # θ_A sees instruction + response + the last context tokens that fit; 0 or null: all
    rope_scaling: dict[str, Any] | None = None  # θ_A = θ_B's checkpoint with this RoPE, e.g. {rope_type: dynamic, factor: 4}
    dtype: str = "auto"  # auto: bf16 on GPU and on CPUs with native bf16, else fp32
    device: str | None = None  # default: cuda:<LOCAL_RANK> when available, else cpu

    # --- prompts ---
    prompt_format: str = "chat"  # chat (the model's chat template) | gateau (the released HMG scripts)
    max_length: int | None = None  # model limit in tokens; default the model's max_position_embeddings
    overlong: str | None = None  # reject | truncate; default: reject for chat, truncate (left) for gateau
    segment_tokens: int = 128
    max_segments: int = 32  # per sample; order-preserving sampling with the run seed (paper: 500)

    # --- engine ---
    batch_tokens: int | None = None  # padded tokens per batch; default 16384 on GPU, 4096 on CPU (faster there)
    max_batch_size: int = 64
    # Samples per chunk (one engine call each; a crash loses at most one chunk). The chunk decides the
    # engine's batches and so the last digits of the scores (bf16: up to ~1e-2 relative), hence a fixed
    # count by default: the same scores on every machine. null: about `chunk_seconds` of work per chunk
    # at the speed of the chunk before (progress and durability every ~30 s; scores then depend on speed).
    chunk_size: int | None = 64
    chunk_seconds: float = 30.0

    # --- CAM ---
    cam_limit: int | None = None  # CAM on the first N valid samples only (rank imputes the rest)
    layers: list[int] | None = None  # attention layers averaged for CAM; default all
    key_block: int = 1024
    cas_metric: str = "cos"  # cos (1 - cosine) | kl (KL(importance || attention)) | js
    importance_temperature: float = 1.0  # importance = softmax(-NLL_i / T); T < 1 sharpens near-uniform importance (applied at merge)

    # --- HMG ---
    hmg_scale: str = "ppl"  # ppl: min-max of PPL (the paper) | log: min-max of log PPL (robust to PPL outliers)

    # --- rank / budget ---
    alpha: float = 0.8  # score = alpha * hmg_term + (1 - alpha) * cas_term (paper: 0.7 limited, 0.8 real-world)
    normalize: str = "rank"  # rank: percentile ranks of both terms | paper: the released rank.py (softmax(hmg) + CAS; CAS alone decides)
    budgets: list[float] = field(default_factory=lambda: [1000, 3000, 5000])  # sizes, or fractions < 1
    baselines: list[str] = field(default_factory=lambda: ["random", "hmg-only", "cam-only", "length", "ifd", "perplexity"])
    budget_overflow: str = "cap"  # cap (warn, keep all samples) | error

    # --- scale-out ---
    num_shards: int | None = None  # default: WORLD_SIZE under torchrun, else 1
    shard_index: int | None = None  # default: RANK under torchrun, else 0

    # --- stage ---
    cam: bool = True  # run CAM in the stage (false: HMG-only ranking)
    diagnose: bool = True  # print diagnostics when the input has gold spans

    # --- audit (`select audit`: every figure on a planted pool of known types) ---
    audit: AuditConfig = field(default_factory=AuditConfig)

    def __post_init__(self) -> None:
        # `--window 0` and `select.window=0` mean "θ_A sees the full input", the same as null.
        if self.window == 0:
            self.window = None
