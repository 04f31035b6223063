"""What the launcher and the machine decide for a training run: rank and world size (from the
environment torchrun / accelerate / deepspeed set), precision, attention kernel, FSDP / DeepSpeed
passthrough into `TrainingArguments`, and how the model is loaded (and, on CPU FSDP, sharded)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from longcurate.train.config import TrainConfig


def dist_env() -> tuple[int, int]:
    """(rank, world_size) from the launcher's environment (1 process when unset)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def resolve_precision(spec: str) -> str:
    """`auto` -> bf16 mixed precision where the device supports it, else fp32."""
    import torch

    from longcurate.core.models import cpu_supports_bf16

    if spec != "auto":  # bf16 | fp32 (`train.config.PRECISIONS`)
        return spec
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
        # auto_wrap: the Trainer wraps by its own policy (`train.config.FSDP_OPTIONS` names every option)
    return True, conf


def native_fsdp(fsdp: tuple[bool, dict | None]) -> bool:
    """FSDP requested on a multi-process CPU run: transformers shards at load time (see load_model_for_training)."""
    import torch

    return fsdp[0] and dist_env()[1] > 1 and not torch.cuda.is_available()


def training_arguments(tc: TrainConfig, *, checkpoints: str, seed: int, precision: str,
                       fsdp: tuple[bool, dict | None]):
    import torch
    from transformers import TrainingArguments

    report = [] if tc.report_to in ("", "none") else [r.strip() for r in tc.report_to.split(",")]
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

    from longcurate.core.models import local_files_only, materialize, model_errors

    extra: dict[str, Any] = {}
    world = dist_env()[1]
    if native_fsdp(fsdp):
        from transformers.distributed.configuration_utils import DistributedConfig

        extra["distributed_config"] = DistributedConfig(
            fsdp_size=world, fsdp_cpu_offload=bool((fsdp[1] or {}).get("cpu_offload", False)))
    with model_errors(name, allow_download):
        model = AutoModelForCausalLM.from_pretrained(materialize(name), dtype=torch.float32, attn_implementation=attn,
                                                     local_files_only=local_files_only(allow_download),
                                                     trust_remote_code=trust_remote_code, **extra)
    model.config.use_cache = False
    if native_fsdp(fsdp):
        accept_full_state_dict(model)
    return model


def accept_full_state_dict(model) -> None:
    """Let a model sharded at load time take a full (unsharded) state dict in `load_state_dict`.

    The Trainer's public resume path (`train(resume_from_checkpoint=...)`) restores a checkpoint's
    weights with `model.load_state_dict(full_weights)`, which a model of DTensor shards refuses
    ("got mixed torch.Tensor and DTensor"). This load pre-hook (public `nn.Module` API) cuts each full
    tensor into this rank's shard first; values that already are DTensors pass unchanged."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    def shard_full_tensors(module, state_dict, prefix, *_: Any) -> None:
        targets = module.state_dict(keep_vars=True)
        for key, value in list(state_dict.items()):
            target = targets.get(key[len(prefix):]) if key.startswith(prefix) else None
            if isinstance(target, DTensor) and not isinstance(value, DTensor):
                state_dict[key] = distribute_tensor(value.to(target.dtype), target.device_mesh, target.placements,
                                                    src_data_rank=None)  # every rank read the same file

    model.register_load_state_dict_pre_hook(shard_full_tensors)
