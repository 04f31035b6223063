"""Long-context SFT on a tokenized mixture with the transformers `Trainer`.

Reads top to bottom: `setup` (dataset, batching plan, arguments, model), `train` (resume from the last
checkpoint), `save` (safetensors + tokenizer in one folder eval can load). Rank and world size come
from the environment (torchrun / accelerate / deepspeed set them); only rank 0 logs and saves.

Launch (see scripts/train_*.sh):

    longcurate train --config configs/demo.yaml                                  # one process (CPU or GPU)
    torchrun --nproc_per_node 8 -m longcurate train -c cfg.yaml train.deepspeed=configs/ds_zero3.json
    accelerate launch --config_file configs/fsdp.yaml -m longcurate train -c cfg.yaml \
        train.fsdp_config=configs/fsdp.yaml
    deepspeed --num_gpus 8 --module longcurate train -c cfg.yaml train.deepspeed=configs/ds_zero3.json
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint $HEAD:29500 \
        -m longcurate train -c cfg.yaml train.fsdp="full_shard"               # multi-node

Batching: `naive` | `sorted` (LongAlign: similar lengths per global batch) | `packed` (rows of
`max_tokens`, attention kept inside each sample). Loss weighting: `token` | `sequence` (see loss.py);
the same value whatever the number of GPUs and the grad-accum split.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longcurate.train.batching import BATCHINGS, LengthSampler, PaddedCollator, global_batch_size, step_groups
from longcurate.train.chat import SOURCES
from longcurate.train.loss import WEIGHTINGS, causal_lm_loss_sum
from longcurate.train.packing import PackedCollator, PackedRows, fill_fraction, pack

log = logging.getLogger("longcurate.train")

REQUIRED_COLUMNS = ("input_ids", "labels", "length")
DONE_FILE = "longcurate_train.json"  # written last into the final model folder: the run is complete


def dist_env() -> tuple[int, int]:
    """(rank, world_size) from the launcher's environment (1 process when unset)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


# ---- data -----------------------------------------------------------------------------------------

def load_tokenized(path: str | os.PathLike, limit: int | None = None):
    """The tokenized mixture (a `datasets` folder); `limit` keeps the first N rows."""
    from datasets import load_from_disk

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"tokenized dataset not found: {path} (run `longcurate tokenize` first)")
    ds = load_from_disk(str(path))
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise ValueError(f"{path}: tokenized dataset lacks column(s) {missing}; has {ds.column_names}")
    if limit is not None and limit < len(ds):
        ds = ds.select(range(limit))
    if len(ds) == 0:
        raise ValueError(f"{path}: the tokenized dataset is empty")
    return ds


def stat_columns(ds) -> dict[str, list]:
    """The columns `data_stats` and `make_plan` read (source, length, n_response_tokens), fetched once."""
    return ds.select_columns([c for c in ("source", "length", "n_response_tokens") if c in ds.column_names]).to_dict()


def data_stats(ds, indices: list[int] | None = None, *, columns: dict[str, list] | None = None) -> dict[str, int]:
    """Samples and tokens per source (`long` / `short`), over `indices` (repeats count) or all rows.
    `columns`: `stat_columns(ds)` already read."""
    cols = stat_columns(ds) if columns is None else columns
    lengths = cols["length"]
    sources = cols["source"] if "source" in cols else ["long"] * len(lengths)
    n_resp = cols.get("n_response_tokens")
    idx = range(len(lengths)) if indices is None else indices
    out: Counter = Counter()
    for i in idx:
        s = sources[i]
        out[f"{s}_samples"] += 1
        out[f"{s}_tokens"] += int(lengths[i])
        if n_resp is not None:
            out[f"{s}_response_tokens"] += int(n_resp[i])
    out["samples"] = sum(v for k, v in out.items() if k.endswith("_samples"))
    out["tokens"] = sum(v for k, v in out.items() if k.endswith("_tokens") and not k.endswith("response_tokens"))
    for s in SOURCES:  # always present, so a manifest shows a zero
        out.setdefault(f"{s}_samples", 0)
        out.setdefault(f"{s}_tokens", 0)
    return dict(sorted(out.items()))


@dataclass
class Plan:
    """What each optimizer step trains on: the dataset the DataLoader reads, its sampler and collator."""

    train_dataset: Any
    sampler: LengthSampler
    collator: Any
    global_batch: int
    bins: list[list[int]] | None = None  # packed: sample indices per row
    stats: dict[str, Any] = field(default_factory=dict)

    def samples_of_steps(self, steps: int, epochs: int) -> list[int]:
        """Sample indices of the first `steps` global batches (the plan is deterministic by seed)."""
        out: list[int] = []
        done = 0
        for epoch in range(max(1, epochs)):
            for group in step_groups(self.sampler.order(epoch), self.global_batch):
                if done >= steps:
                    return out
                out += [j for g in group for j in self.bins[g]] if self.bins is not None else group
                done += 1
        return out


def make_plan(ds, *, batching: str, loss_weighting: str, per_device: int, grad_accum: int, world_size: int,
              seed: int, pad_token_id: int, max_tokens: int = 8192, packing: str = "ffd",
              flatten: bool = False, lengths: list[int] | None = None) -> Plan:
    """`lengths`: the `length` column already read (else read here)."""
    if batching not in BATCHINGS:
        raise ValueError(f"unknown train.batching {batching!r}; expected one of {BATCHINGS}")
    if loss_weighting not in WEIGHTINGS:
        raise ValueError(f"unknown train.loss_weighting {loss_weighting!r}; expected one of {WEIGHTINGS}")
    gb = global_batch_size(per_device, grad_accum, world_size)
    lengths = [int(x) for x in (ds["length"][:] if lengths is None else lengths)]
    if batching == "packed":
        bins = pack(lengths, max_tokens, packing)
        rows = PackedRows(ds, bins)
        sampler = LengthSampler([sum(lengths[i] for i in b) for b in bins], "naive", gb, seed)
        fill = fill_fraction(lengths, bins, max_tokens)
        return Plan(rows, sampler, PackedCollator(pad_token_id, loss_weighting, flatten=flatten), gb, bins,
                    {"rows": len(bins), "max_tokens": max_tokens, "fill": round(fill, 4)})
    sampler = LengthSampler(lengths, batching, gb, seed)
    return Plan(ds, sampler, PaddedCollator(pad_token_id, loss_weighting), gb)


# ---- the Trainer ----------------------------------------------------------------------------------

def _trainer_class():
    """Built lazily so importing this module does not import torch / transformers."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import Trainer

    class LongTrainer(Trainer):
        """`Trainer` with our sampler + collator and a loss normalised by the GLOBAL batch's items."""

        loss_is_scaled_for_ga = True  # compute_loss divides by the whole step's item count

        def __init__(self, *args: Any, plan: Plan, preloaded: str | None = None, **kwargs: Any):
            self.plan = plan
            self.preloaded = preloaded  # checkpoint whose weights the (load-time sharded) model already holds
            super().__init__(*args, **kwargs)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            # A model sharded at load time (CPU FSDP) cannot take a full state dict here; it was built from
            # the checkpoint's weights with `from_pretrained` instead, and the Trainer restores the rest.
            if self.preloaded is not None and Path(resume_from_checkpoint) == Path(self.preloaded):
                return
            super()._load_from_checkpoint(resume_from_checkpoint, model)

        def get_train_dataloader(self):
            loader = DataLoader(self.plan.train_dataset, batch_size=self.args.per_device_train_batch_size,
                                sampler=self.plan.sampler, collate_fn=self.plan.collator,
                                num_workers=self.args.dataloader_num_workers, drop_last=False)
            return self.accelerator.prepare(loader)

        def get_batch_samples(self, epoch_iterator, num_batches, device):
            batches = []
            for _ in range(num_batches):
                try:
                    batches.append(next(epoch_iterator))
                except StopIteration:
                    break
            local = sum(int(b["num_items"]) for b in batches)
            total = torch.tensor(local, dtype=torch.long, device=device)
            if self.accelerator.num_processes > 1:
                total = self.accelerator.reduce(total, reduction="sum")
            return batches, total

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss_sum, outputs = causal_lm_loss_sum(model, inputs)
            if num_items_in_batch is None:  # outside the training loop: this micro-batch alone
                loss = loss_sum / inputs["num_items"].clamp_min(1)
            else:
                # Gradients are averaged over ranks; x world size makes the step's gradient that of
                # (sum over the global batch) / (global items).
                loss = loss_sum / num_items_in_batch.clamp_min(1) * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    return LongTrainer


def _data_log_callback(stats: dict[str, Any]):
    from transformers import TrainerCallback

    class DataLog(TrainerCallback):
        """Puts what the run trains on (long / short samples and tokens) in the trainer log."""

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                log.info("training data: %s", json.dumps(stats))
                state.log_history.append({"step": state.global_step, **{f"data/{k}": v for k, v in stats.items()}})

    return DataLog()


def resolve_precision(spec: str) -> str:
    """`auto` -> bf16 mixed precision where the device supports it, else fp32."""
    import torch

    from longcurate.core.models import cpu_supports_bf16

    if spec in ("bf16", "fp32"):
        return spec
    if spec != "auto":
        raise ValueError(f"unknown train.precision {spec!r}; expected auto, bf16 or fp32")
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_supports_bf16() else "fp32"


def resolve_attention(spec: str) -> str:
    import importlib.util

    import torch

    if spec != "auto":
        return spec
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def fsdp_settings(options: str, config_path: str | None) -> tuple[bool, dict[str, Any] | None]:
    """`train.fsdp` options ("full_shard offload") and/or `train.fsdp_config` (an accelerate config
    YAML whose `fsdp_config:` mapping is used, or a JSON / YAML mapping) -> TrainingArguments values."""
    if not options and not config_path:
        return False, None
    conf: dict[str, Any] = {}
    if config_path:
        text = Path(config_path).read_text(encoding="utf-8")
        import yaml

        data = yaml.safe_load(text) or {}  # JSON is YAML
        conf = dict(data.get("fsdp_config", data))
    conf = {(k[5:] if k.startswith("fsdp_") else k): v for k, v in conf.items()}
    if "offload_params" in conf:  # accelerate's name for the Trainer's `cpu_offload`
        conf["cpu_offload"] = bool(conf.pop("offload_params"))
    conf.setdefault("version", 2)
    for opt in options.split():
        if opt == "full_shard":
            conf.setdefault("reshard_after_forward", True)
        elif opt == "shard_grad_op":
            conf.setdefault("reshard_after_forward", False)
        elif opt == "offload":
            conf.setdefault("cpu_offload", True)
        elif opt != "auto_wrap":
            raise ValueError(f"unknown train.fsdp option {opt!r}; use full_shard, shard_grad_op, offload, auto_wrap")
    return True, conf


def native_fsdp(fsdp: tuple[bool, dict | None]) -> bool:
    """FSDP requested on a multi-process CPU run: transformers shards at load time (see load_model_for_training)."""
    import torch

    return fsdp[0] and dist_env()[1] > 1 and not torch.cuda.is_available()


def training_arguments(tc, *, checkpoints: str, seed: int, precision: str, fsdp: tuple[bool, dict | None]):
    from transformers import TrainingArguments

    report = [] if tc.report_to in ("", "none") else [r.strip() for r in tc.report_to.split(",")]
    import torch

    use_fsdp, fsdp_conf = fsdp
    kwargs: dict[str, Any] = {}
    if use_fsdp and torch.cuda.is_available():  # on CPU the model is sharded at load (see load_model_for_training)
        kwargs.update(fsdp=True, fsdp_config=fsdp_conf)
    if tc.deepspeed:
        if not Path(tc.deepspeed).exists():
            raise FileNotFoundError(f"train.deepspeed: {tc.deepspeed} not found")
        kwargs["deepspeed"] = tc.deepspeed
    if tc.ddp_backend:
        kwargs["ddp_backend"] = tc.ddp_backend
    if native_fsdp(fsdp):
        # transformers cannot checkpoint the optimizer of a model sharded at load time: checkpoints hold
        # the weights, the step and the data position; Adam's moments restart on resume.
        kwargs["save_only_model"] = True
    return TrainingArguments(
        output_dir=checkpoints,
        per_device_train_batch_size=tc.per_device_batch_size,
        gradient_accumulation_steps=tc.grad_accum,
        num_train_epochs=tc.epochs,
        max_steps=tc.max_steps,
        learning_rate=tc.learning_rate,
        lr_scheduler_type=tc.lr_scheduler,
        warmup_steps=tc.warmup_ratio,
        weight_decay=tc.weight_decay,
        adam_beta1=tc.adam_beta1,
        adam_beta2=tc.adam_beta2,
        max_grad_norm=tc.max_grad_norm,
        gradient_checkpointing=tc.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if tc.gradient_checkpointing else None,
        bf16=precision == "bf16",
        logging_steps=tc.logging_steps,
        save_strategy="steps",
        save_steps=tc.save_steps,
        save_total_limit=tc.save_total_limit,
        report_to=report,
        seed=seed,
        remove_unused_columns=False,
        dataloader_num_workers=tc.dataloader_num_workers,
        use_cpu=not torch.cuda.is_available() and not tc.deepspeed,  # accelerate skips DeepSpeed when use_cpu
        disable_tqdm=False,
        **kwargs,
    )


def load_model_for_training(name: str, attn: str, *, fsdp: tuple[bool, dict | None] = (False, None),
                            allow_download: bool = False, trust_remote_code: bool = False):
    """fp32 master weights (bf16 runs as mixed precision); loaded after TrainingArguments so that
    DeepSpeed ZeRO-3 can partition at load time.

    FSDP on CUDA goes through accelerate (TrainingArguments.fsdp). accelerate does not shard on
    multi-CPU runs, so there transformers' own FSDP2 (`DistributedConfig(fsdp_size=world)`) shards the
    model at load time over gloo, and the Trainer leaves the already-sharded model as it is."""
    import torch
    from transformers import AutoModelForCausalLM

    from longcurate.core.models import _local_only, materialize

    extra: dict[str, Any] = {}
    world = dist_env()[1]
    if native_fsdp(fsdp):
        from transformers.distributed.configuration_utils import DistributedConfig

        extra["distributed_config"] = DistributedConfig(
            fsdp_size=world, fsdp_cpu_offload=bool((fsdp[1] or {}).get("cpu_offload", False)))
    model = AutoModelForCausalLM.from_pretrained(materialize(name), dtype=torch.float32, attn_implementation=attn,
                                                 local_files_only=_local_only(allow_download),
                                                 trust_remote_code=trust_remote_code, **extra)
    model.config.use_cache = False
    return model


def last_checkpoint(folder: str | os.PathLike) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if Path(folder).is_dir() else None


def is_trained(output: str | os.PathLike) -> bool:
    return (Path(output) / DONE_FILE).exists()


def train(dataset_path: str | os.PathLike, output: str | os.PathLike, tc, *, model_name: str,
          checkpoints: str | os.PathLike, seed: int = 0, model=None, tokenizer=None,
          allow_download: bool = False, trust_remote_code: bool = False) -> dict[str, Any]:
    """Train `model_name` (or `model`) on the tokenized mixture; save the final model + tokenizer to
    `output`. Resumes from the last checkpoint in `checkpoints` when `tc.resume == "auto"`."""
    from longcurate.core.models import load_tokenizer

    rank, world = dist_env()
    # -- setup
    ds = load_tokenized(dataset_path, tc.limit)
    columns = stat_columns(ds)
    if tokenizer is None:
        tokenizer = load_tokenizer(model_name, allow_download, trust_remote_code)
    precision = resolve_precision(tc.precision)
    attn = resolve_attention(tc.attn_implementation) if model is None else model.config._attn_implementation
    fsdp = fsdp_settings(tc.fsdp, tc.fsdp_config)
    args = training_arguments(tc, checkpoints=str(checkpoints), seed=seed, precision=precision, fsdp=fsdp)
    plan = make_plan(ds, batching=tc.batching, loss_weighting=tc.loss_weighting,
                     per_device=tc.per_device_batch_size, grad_accum=tc.grad_accum, world_size=args.world_size,
                     seed=seed, pad_token_id=tokenizer.pad_token_id, max_tokens=tc.max_tokens, packing=tc.packing,
                     flatten=attn.startswith("flash_attention"), lengths=columns["length"])
    dataset = data_stats(ds, columns=columns)
    resume = None
    if tc.resume == "auto":
        resume = last_checkpoint(checkpoints)
    elif tc.resume not in ("never", "", None):
        resume = tc.resume
    preloaded = resume if native_fsdp(fsdp) and resume else None
    if model is None:
        model = load_model_for_training(preloaded or model_name, attn, fsdp=fsdp, allow_download=allow_download,
                                        trust_remote_code=trust_remote_code)
    trainer = _trainer_class()(model=model, args=args, train_dataset=plan.train_dataset,
                               processing_class=tokenizer, plan=plan, preloaded=preloaded,
                               callbacks=[_data_log_callback({"batching": tc.batching,
                                                              "loss_weighting": tc.loss_weighting,
                                                              "global_batch": plan.global_batch,
                                                              "world_size": args.world_size,
                                                              **plan.stats, **dataset})])
    # -- train
    if resume and rank == 0:
        log.info("resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)
    # -- save
    trainer.save_model(str(output))  # safetensors; every rank joins (FSDP / ZeRO-3 gather), rank 0 writes
    steps = trainer.state.global_step
    epochs = max(1, math.ceil(trainer.state.epoch or 1))
    seen = data_stats(ds, plan.samples_of_steps(steps, epochs), columns=columns)
    stats = {"steps": steps, "resumed_from": resume, "train_loss": round(float(result.training_loss), 6),
             "world_size": args.world_size, "global_batch": plan.global_batch, "precision": precision,
             "distributed": ("fsdp2 (transformers)" if getattr(model, "is_distributed_loading_by_transformers", False)
                             else str(trainer.accelerator.distributed_type).split(".")[-1].lower()),
             "attn_implementation": attn, "batching": tc.batching, "loss_weighting": tc.loss_weighting,
             **plan.stats, "dataset": dataset, "seen": seen,
             "log_history": [h for h in trainer.state.log_history if "loss" in h]}
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output))
        from longcurate.core.jsonl import write_json

        write_json(Path(output) / DONE_FILE, stats)
        log.info("trained %d steps on %d long + %d short samples (%d tokens seen); model -> %s", steps,
                 seen["long_samples"], seen["short_samples"], seen["tokens"], output)
    trainer.accelerator.wait_for_everyone()
    return stats
