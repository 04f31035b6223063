"""Long-context SFT on a tokenized mixture with the transformers `Trainer`.

Reads top to bottom: `build_trainer` (batching plan, arguments, model), `train` (resume through the
Trainer's public `resume_from_checkpoint`), save (safetensors + tokenizer in one folder eval can
load). Rank and world size come from the environment (launch.py); only rank 0 logs and saves.

Launch (see scripts/train_*.sh):

    longcurate train fit --config configs/demo.yaml                              # one process (CPU or GPU)
    torchrun --nproc_per_node 8 -m longcurate train fit -c cfg.yaml train.deepspeed=configs/ds_zero3.json
    accelerate launch --config_file configs/fsdp.yaml -m longcurate train fit -c cfg.yaml \
        train.fsdp_config=configs/fsdp.yaml
    deepspeed --num_gpus 8 --module longcurate train fit -c cfg.yaml train.deepspeed=configs/ds_zero3.json
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint $HEAD:29500 \
        -m longcurate train fit -c cfg.yaml train.fsdp="full_shard"           # multi-node

Batching: `naive` | `sorted` (LongAlign: similar lengths per micro-step, groups shuffled) | `packed` (rows of
`max_tokens`, attention kept inside each sample). Loss weighting: `token` | `sequence` (see loss.py);
the same value whatever the number of GPUs and the grad-accum split.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import TYPE_CHECKING, Any

from longcurate.core.jsonl import naming
from longcurate.train.batching import Plan, make_plan
from longcurate.train.checkpoints import cast_saved_model, prune_callback, save_dtype_name
from longcurate.train.dataset import data_stats, load_tokenized, stat_columns
from longcurate.train.launch import (dist_env, fsdp_settings, load_model_for_training, resolve_attention,
                                     resolve_precision, training_arguments)
from longcurate.train.loss import causal_lm_loss_sum

if TYPE_CHECKING:
    from longcurate.train.config import TrainConfig

log = logging.getLogger("longcurate.train")


# ---- the Trainer ----------------------------------------------------------------------------------

def _trainer_class():
    """Built lazily so importing this module does not import torch / transformers."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import Trainer

    class LongTrainer(Trainer):
        """`Trainer` with our sampler + collator and a loss normalised by the GLOBAL batch's items."""

        loss_is_scaled_for_ga = True  # compute_loss divides by the whole step's item count

        def __init__(self, *args: Any, plan: Plan, **kwargs: Any):
            self.plan = plan
            super().__init__(*args, **kwargs)

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


def build_trainer(ds, columns: dict[str, list], tokenizer, tc: TrainConfig, *, model_name: str,
                  checkpoints: str | os.PathLike, seed: int, model=None, allow_download: bool = False,
                  trust_remote_code: bool = False, callbacks: list | None = None):
    """The Trainer for `tc` on `ds` (`columns`: its `stat_columns`) and what it was set up with; it
    keeps optimizer state in its newest checkpoint only (`checkpoints.prune_callback`)."""
    precision = resolve_precision(tc.precision)
    save_dtype = save_dtype_name(tc.save_dtype, precision)  # a bad value stops before any training
    attn = resolve_attention(tc.attn_implementation) if model is None else model.config._attn_implementation
    fsdp = fsdp_settings(tc.fsdp, tc.fsdp_config)
    args = training_arguments(tc, checkpoints=str(checkpoints), seed=seed, precision=precision, fsdp=fsdp)
    plan = make_plan(ds, batching=tc.batching, loss_weighting=tc.loss_weighting,
                     per_device=tc.per_device_batch_size, grad_accum=tc.grad_accum, world_size=args.world_size,
                     seed=seed, pad_token_id=tokenizer.pad_token_id, max_tokens=tc.max_tokens, packing=tc.packing,
                     flatten=attn.startswith("flash_attention"), lengths=columns["length"],
                     sort_group=tc.sort_group)
    dataset = data_stats(ds, columns=columns)
    if model is None:
        model = load_model_for_training(model_name, attn, fsdp=fsdp, allow_download=allow_download,
                                        trust_remote_code=trust_remote_code)
    logged = {"batching": tc.batching, "loss_weighting": tc.loss_weighting, "global_batch": plan.global_batch,
              "world_size": args.world_size, **plan.stats, **dataset}
    trainer = _trainer_class()(model=model, args=args, train_dataset=plan.train_dataset, processing_class=tokenizer,
                               plan=plan, callbacks=[_data_log_callback(logged), prune_callback(checkpoints),
                                                     *(callbacks or [])])
    distributed = ("fsdp2 (transformers)" if getattr(model, "is_distributed_loading_by_transformers", False)
                   else str(trainer.accelerator.distributed_type).split(".")[-1].lower())
    setup = {"precision": precision, "save_dtype": save_dtype, "distributed": distributed, "attn_implementation": attn,
             "batching": tc.batching, "loss_weighting": tc.loss_weighting, **plan.stats, "dataset": dataset}
    return trainer, plan, setup


def train(dataset_path: str | os.PathLike, output: str | os.PathLike, tc: TrainConfig, *, model_name: str,
          checkpoints: str | os.PathLike, resume: str | None = None, seed: int = 0, model=None, tokenizer=None,
          allow_download: bool = False, trust_remote_code: bool = False, callbacks: list | None = None
          ) -> dict[str, Any]:
    """Train `model_name` (or `model`) on the tokenized mixture, from checkpoint `resume` when given;
    save the final model (in `train.save_dtype`) + tokenizer to `output`; return the run's stats (its
    log history included). `callbacks`: extra TrainerCallbacks."""
    from longcurate.core.models import load_tokenizer

    ds = load_tokenized(dataset_path, tc.limit)
    columns = stat_columns(ds)
    if tokenizer is None:
        tokenizer = load_tokenizer(model_name, allow_download, trust_remote_code)
    trainer, plan, setup = build_trainer(ds, columns, tokenizer, tc, model_name=model_name, checkpoints=checkpoints,
                                         seed=seed, model=model, allow_download=allow_download,
                                         trust_remote_code=trust_remote_code, callbacks=callbacks)
    if resume and dist_env()[0] == 0:
        log.info("resuming from %s", resume)
    with naming(checkpoints):
        result = trainer.train(resume_from_checkpoint=resume)
    with naming(output):
        trainer.save_model(str(output))  # safetensors; every rank joins (FSDP / ZeRO-3 gather), rank 0 writes
    steps = trainer.state.global_step
    seen = data_stats(ds, plan.samples_of_steps(steps, max(1, math.ceil(trainer.state.epoch or 1))), columns=columns)
    stats = {"steps": steps, "resumed_from": resume, "train_loss": round(float(result.training_loss), 6),
             "world_size": trainer.args.world_size, "global_batch": plan.global_batch, **setup, "seen": seen,
             "log_history": [h for h in trainer.state.log_history if "loss" in h]}
    if trainer.is_world_process_zero():
        with naming(output):
            cast_saved_model(output, setup["save_dtype"])
        tokenizer.save_pretrained(str(output))
        log.info("trained %d steps on %d long + %d short samples (%d tokens seen); model -> %s", steps,
                 seen["long_samples"], seen["short_samples"], seen["tokens"], output)
    trainer.accelerator.wait_for_everyone()
    return stats
