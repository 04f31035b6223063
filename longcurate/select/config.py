"""Configuration of the select stage (defaults and rules live here), and `SelectRun`, what the stage
reads of the whole run's config.

Paths left empty resolve inside `output_dir`: input `samples.jsonl`, scores under `select/`,
budgets under `budgets/`. `configs/paper-7b.yaml` lists what the published setting changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from longcurate.core.chat_formats import InputFormat
from longcurate.core.errors import UserError
from longcurate.core.layout import parse_budget
from longcurate.core.rules import above, at_least, between, each_of, one_of, require
from longcurate.select.conversations import SPLIT_RULES, TURN_POLICIES

if TYPE_CHECKING:
    from longcurate.core.layout import RunLayout

PROMPT_FORMATS = ("chat", "gateau")
OVERLONG = ("reject", "truncate")
DTYPES = ("auto", "bf16", "bfloat16", "fp16", "float16", "fp32", "float32")  # `core.models.pick_dtype`
CAS_METRICS = ("cos", "kl", "js")
HMG_SCALES = ("ppl", "log")
NORMALIZE = ("rank", "paper")
# Every budget method's order (`select.budget.method_orders`); each is also an `ablate` arm.
METHODS = ("gateau", "random", "hmg-only", "cam-only", "length", "ifd", "perplexity")
BUDGET_OVERFLOW = ("cap", "error")

from longcurate.select.audit_config import AuditConfig


@dataclass
class SelectConfig:
    input: str | None = None  # samples to score; default <output_dir>/samples.jsonl
    output: str | None = None  # output of the command at hand (score file, ranked file, ...)
    scores_dir: str | None = None  # default <output_dir>/select (hmg.jsonl, cam.jsonl, ranked.jsonl)
    budget_dir: str | None = None  # default <output_dir>/budgets
    limit: int | None = None  # score at most this many records (the first N valid ones)

    # --- reading the input (select/conversations.py; README "Use your own data") ---
    input_format: InputFormat = field(default_factory=InputFormat)  # shape (auto) and column / role mapping
    split: str = "last-blank-line"  # context | instruction in the user turn: last-blank-line | first-blank-line | film-markers | whole-turn
    turns: str = "last"  # the answer a multi-turn conversation is scored on: last (whole history before it) | first

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
    # log: min-max of log PPL (the default: robust to PPL outliers; the scorer audit's pool A: far 65% of the
    # top k vs 38% on ppl) | ppl: min-max of PPL (the paper; with normalize: paper, the released arithmetic)
    hmg_scale: str = "log"

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
        self._check_models_and_prompts()
        self._check_engine_and_scores()
        self._check_rank_and_budgets()

    def _check_models_and_prompts(self) -> None:
        self.input_format.check("select.input_format")
        one_of("select.split", self.split, SPLIT_RULES)
        one_of("select.turns", self.turns, TURN_POLICIES)
        for name in ("limit", "window", "max_length", "batch_tokens", "cam_limit"):
            at_least(f"select.{name}", getattr(self, name), 1, optional=True)
        require(self.window is not None or self.model_a is not None or self.rope_scaling is not None,
                "select.window", "is null (the full input) and neither select.model_a nor select.rope_scaling "
                "is set: θ_A would equal θ_B")
        one_of("select.dtype", self.dtype, DTYPES)
        one_of("select.prompt_format", self.prompt_format, PROMPT_FORMATS)
        one_of("select.overlong", self.overlong, OVERLONG, optional=True)
        for name in ("segment_tokens", "max_segments"):
            at_least(f"select.{name}", getattr(self, name), 1)

    def _check_engine_and_scores(self) -> None:
        for name in ("max_batch_size", "key_block"):
            at_least(f"select.{name}", getattr(self, name), 1)
        at_least("select.chunk_size", self.chunk_size, 1, optional=True)  # null: sized by `chunk_seconds`
        above("select.chunk_seconds", self.chunk_seconds)
        require(self.layers is None or len(self.layers) > 0, "select.layers", "must name a layer (or be null: all)")
        one_of("select.cas_metric", self.cas_metric, CAS_METRICS)
        above("select.importance_temperature", self.importance_temperature)
        one_of("select.hmg_scale", self.hmg_scale, HMG_SCALES)
        at_least("select.num_shards", self.num_shards, 1, optional=True)
        at_least("select.shard_index", self.shard_index, 0, optional=True)
        if self.num_shards is not None and self.shard_index is not None:
            require(self.shard_index < self.num_shards, "select.shard_index",
                    f"must be below select.num_shards ({self.num_shards}), got {self.shard_index}")

    def _check_rank_and_budgets(self) -> None:
        between("select.alpha", self.alpha, 0, 1)
        one_of("select.normalize", self.normalize, NORMALIZE)
        require(len(self.budgets) > 0, "select.budgets", "must name at least one budget")
        for spec in self.budgets:
            try:
                parse_budget(spec)
            except UserError as e:
                require(False, "select.budgets", f"holds a bad budget: {e}")
        each_of("select.baselines", self.baselines, [m for m in METHODS if m != "gateau"], empty=True)
        one_of("select.budget_overflow", self.budget_overflow, BUDGET_OVERFLOW)


class SelectRun(Protocol):
    """What the select stage reads of the run's config (`longcurate.config.RunConfig` is one)."""

    select: SelectConfig
    seed: int
    model: str
    allow_download: bool
    trust_remote_code: bool

    def layout(self) -> RunLayout: ...
