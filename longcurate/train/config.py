"""Configuration of the train stage: mixture, tokenization, training (defaults and rules live here),
and `TrainRun`, what the stage reads of the whole run's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from longcurate.core.chat_formats import InputFormat
from longcurate.core.rules import above, at_least, between, one_of, require

if TYPE_CHECKING:
    from longcurate.core.layout import RunLayout

TEMPLATES = ("chat", "film")
OVERLONG = ("truncate", "skip")
BATCHINGS = ("naive", "sorted", "packed")
SORT_GROUPS = ("micro", "global")
WEIGHTINGS = ("token", "sequence")
PACKINGS = ("ffd", "greedy")
PRECISIONS = ("auto", "bf16", "fp32")
SAVE_DTYPES = ("auto", "bf16", "fp16", "fp32")
FSDP_OPTIONS = ("full_shard", "shard_grad_op", "offload", "auto_wrap")
RESUME = ("auto", "never")  # or a checkpoint folder


@dataclass
class MixConfig:
    long: list[str] = field(default_factory=list)  # budget files; default: the select stage's top budget
    short: str | None = None  # chat data in any shape (messages, ShareGPT, alpaca; README "Use your own data"); None: none
    short_size: int | None = None  # number of short samples to take ...
    short_ratio: float | None = None  # ... or short : long ratio (e.g. 10.0 = ten short per long)
    output: str | None = None  # default: <output_dir>/mixture/mixture.jsonl
    limit: int | None = None
    long_format: InputFormat = field(default_factory=InputFormat)  # shape (auto) and column / role mapping of `long`
    short_format: InputFormat = field(default_factory=InputFormat)  # ... and of `short`

    def __post_init__(self) -> None:
        at_least("train.mix.short_size", self.short_size, 0, optional=True)
        at_least("train.mix.short_ratio", self.short_ratio, 0, optional=True)
        require(self.short_size is None or self.short_ratio is None, "train.mix.short_size",
                "and train.mix.short_ratio are two ways to say one thing: give one")
        require(self.short is not None or not (self.short_size or self.short_ratio), "train.mix.short",
                "is not set, but train.mix.short_size / short_ratio asks for short samples")
        at_least("train.mix.limit", self.limit, 1, optional=True)
        self.long_format.check("train.mix.long_format")
        self.short_format.check("train.mix.short_format")


@dataclass
class TokenizeConfig:
    input: str | None = None  # default: the mixture JSONL
    output: str | None = None  # default: <output_dir>/mixture/tokenized (a datasets Arrow folder)
    template: str = "chat"  # chat (the tokenizer's chat template; FILM [INST] when it has none) | film
    max_length: int = 8192
    overlong: str = "truncate"  # truncate (middle of the context, instruction kept) | skip
    num_proc: int = 1
    limit: int | None = None

    def __post_init__(self) -> None:
        one_of("train.tokenize.template", self.template, TEMPLATES)
        at_least("train.tokenize.max_length", self.max_length, 1)
        one_of("train.tokenize.overlong", self.overlong, OVERLONG)
        at_least("train.tokenize.num_proc", self.num_proc, 1)
        at_least("train.tokenize.limit", self.limit, 1, optional=True)


@dataclass
class TrainConfig:
    mix: MixConfig = field(default_factory=MixConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    limit: int | None = None  # train on at most this many tokenized samples (first N, in dataset order)
    # Inputs and outputs.
    dataset: str | None = None  # tokenized Arrow folder; default: tokenize.output
    init_from: str | None = None  # model to fine-tune; default: the run's `model`
    output: str | None = None  # final model folder (safetensors + tokenizer); default: <output_dir>/checkpoint
    checkpoints: str | None = None  # Trainer checkpoints (resume); default: <output_dir>/train
    # Batching and loss (docs/reference.md, "LongAlign training tricks").
    batching: str = "sorted"  # naive | sorted | packed
    sort_group: str = "micro"  # sorted: length groups of one micro-step (world x per-device; LongAlign's release) | global (one optimiser step)
    loss_weighting: str = "sequence"  # token (every response token equal) | sequence (every sample equal)
    max_tokens: int = 8192  # packed: tokens per packed row (>= the longest sample)
    packing: str = "ffd"  # packed: ffd (first-fit-decreasing) | greedy (next-fit in length order)
    per_device_batch_size: int = 1  # samples per device per micro-batch (packed: rows)
    grad_accum: int = 1
    # Optimisation (GATEAU's 7B setting: lr 2e-5 cosine, 3% warm-up, wd 0, betas 0.9/0.95).
    epochs: float = 1.0
    max_steps: int = -1  # >= 1 overrides epochs; -1: epochs decide
    learning_rate: float = 2e-5
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = True
    precision: str = "auto"  # auto (bf16 mixed precision when the device supports it) | bf16 | fp32
    attn_implementation: str = "auto"  # auto (flash_attention_2 when installed on CUDA, else sdpa) | sdpa | eager
    # Scale-out passthrough to transformers / accelerate.
    deepspeed: str | None = None  # e.g. configs/ds_zero3.json
    fsdp: str = ""  # e.g. "full_shard auto_wrap" (TrainingArguments.fsdp)
    fsdp_config: str | None = None  # e.g. configs/fsdp.yaml (its `fsdp_config:` mapping, or a JSON file)
    ddp_backend: str | None = None  # nccl | gloo; None: accelerate's choice
    # Logging and checkpoints.
    report_to: str = "none"  # none | tensorboard | wandb (keys from the environment only)
    logging_steps: int = 1
    save_steps: int = 500
    save_total_limit: int | None = 2  # Trainer checkpoints kept (only the newest holds optimizer state)
    save_dtype: str = "auto"  # final model: auto (the training dtype: bf16 under bf16 mixed precision) | bf16 | fp16 | fp32
    resume: str = "auto"  # auto (the last checkpoint in `checkpoints`) | never | <checkpoint folder>
    dataloader_num_workers: int = 0

    def __post_init__(self) -> None:
        self._check_batching()
        self._check_optimisation()
        self._check_saving()

    def _check_batching(self) -> None:
        at_least("train.limit", self.limit, 1, optional=True)
        one_of("train.batching", self.batching, BATCHINGS)
        one_of("train.sort_group", self.sort_group, SORT_GROUPS)
        one_of("train.loss_weighting", self.loss_weighting, WEIGHTINGS)
        one_of("train.packing", self.packing, PACKINGS)
        for name in ("max_tokens", "per_device_batch_size", "grad_accum"):
            at_least(f"train.{name}", getattr(self, name), 1)
        if self.batching == "packed" and self.dataset is None:  # a dataset of its own: checked as it is read
            require(self.max_tokens >= self.tokenize.max_length, "train.max_tokens",
                    f"({self.max_tokens}) must hold the longest sample: >= train.tokenize.max_length "
                    f"({self.tokenize.max_length})")

    def _check_optimisation(self) -> None:
        # The Trainer takes `max_steps` steps when it is >= 0, else ceil(epochs x updates per epoch)
        # (at least one per epoch of a non-empty dataset): only these values would make no step.
        require(self.max_steps == -1 or self.max_steps >= 1, "train.max_steps",
                f"must be >= 1, or -1 (train.epochs decides), got {self.max_steps}: 0 makes no optimiser step")
        at_least("train.epochs", self.epochs, 0)
        require(self.max_steps >= 1 or self.epochs > 0, "train.epochs",
                f"is {self.epochs:g} and train.max_steps is not set (-1): no optimiser step would be taken")
        above("train.learning_rate", self.learning_rate)
        between("train.warmup_ratio", self.warmup_ratio, 0, 1)
        at_least("train.weight_decay", self.weight_decay, 0)
        for name in ("adam_beta1", "adam_beta2"):
            between(f"train.{name}", getattr(self, name), 0, 1, high_open=True)
        at_least("train.max_grad_norm", self.max_grad_norm, 0)  # 0: no clipping
        if self.lr_scheduler != "cosine":  # transformers' list, loaded only for another choice (it is slow)
            from transformers.trainer_utils import SchedulerType

            one_of("train.lr_scheduler", self.lr_scheduler, [s.value for s in SchedulerType])
        one_of("train.precision", self.precision, PRECISIONS)
        require(bool(self.attn_implementation), "train.attn_implementation", "must not be empty (auto: the best there is)")
        for option in self.fsdp.split():
            one_of("train.fsdp", option, FSDP_OPTIONS)

    def _check_saving(self) -> None:
        for name in ("logging_steps", "save_steps"):
            at_least(f"train.{name}", getattr(self, name), 1)
        at_least("train.save_total_limit", self.save_total_limit, 1, optional=True)
        one_of("train.save_dtype", self.save_dtype, SAVE_DTYPES)
        require(bool(self.resume), "train.resume", f"must be one of {list(RESUME)} or a checkpoint folder")
        at_least("train.dataloader_num_workers", self.dataloader_num_workers, 0)


class TrainRun(Protocol):
    """What the train stage reads of the run's config (`longcurate.config.RunConfig` is one). Its
    default long data, the select stage's top budget file, comes from `layout().top_budget`."""

    train: TrainConfig
    seed: int
    model: str
    allow_download: bool
    trust_remote_code: bool

    def layout(self) -> RunLayout: ...
