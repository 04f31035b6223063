"""Configuration of the train stage: mixture, tokenization, training (defaults live here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from longcurate.core.chat_formats import InputFormat


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


@dataclass
class TokenizeConfig:
    input: str | None = None  # default: the mixture JSONL
    output: str | None = None  # default: <output_dir>/mixture/tokenized (a datasets Arrow folder)
    template: str = "chat"  # chat (the tokenizer's chat template; FILM [INST] when it has none) | film
    max_length: int = 8192
    overlong: str = "truncate"  # truncate (middle of the context, instruction kept) | skip
    num_proc: int = 1
    limit: int | None = None


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
    max_steps: int = -1  # > 0 overrides epochs
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
