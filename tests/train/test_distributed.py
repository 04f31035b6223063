"""Distributed training on the CPU: `torchrun --nproc_per_node 2` with FSDP (gloo) drives the real CLI
on a tiny model, saves, resumes to the right step, and matches a one-process run with the same global
batch (the loss does not depend on the number of processes). DeepSpeed configs are validated."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _write_inputs(base: Path, tokenizer, make_samples, make_dataset) -> None:
    from oracles.models import random_llama

    random_llama(seed=0).save_pretrained(base / "model")
    tokenizer.save_pretrained(base / "model")
    make_dataset(make_samples(48, seed=2, min_len=8, max_len=48)).save_to_disk(str(base / "tok"))


def _config(base: Path, run: str, **train) -> Path:
    cfg = {"output_dir": str(base / run), "seed": 0,
           "train": {"dataset": str(base / "tok"), "init_from": str(base / "model"), "max_steps": 10,
                     "save_steps": 5, "per_device_batch_size": 2, "grad_accum": 2, "learning_rate": 1e-3,
                     "warmup_ratio": 0.0, "precision": "fp32", "gradient_checkpointing": False, **train}}
    path = base / f"{run}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(cmd: list[str], run_group) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = run_group(cmd, cwd=ROOT, env=env, timeout=300)  # kills torchrun's workers too on a timeout
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return out


def _torchrun(config: Path, run_group) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "-m", "longcurate", "train", "fit", "-c", str(config)], run_group)


def _stats(base: Path, run: str) -> dict:
    return json.loads((base / run / "checkpoint.done").read_text())  # the model step's marker


def test_fsdp_two_processes_train_save_resume(tmp_path, tokenizer, make_samples, make_dataset, run_group):
    _write_inputs(tmp_path, tokenizer, make_samples, make_dataset)
    cfg = _config(tmp_path, "fsdp", fsdp="full_shard")
    _torchrun(cfg, run_group)
    stats = _stats(tmp_path, "fsdp")
    losses = [h["loss"] for h in stats["log_history"]]
    assert stats["world_size"] == 2 and stats["distributed"].startswith("fsdp") and stats["steps"] == 10
    assert len(losses) == 10 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # it learns
    assert (tmp_path / "fsdp" / "checkpoint" / "model.safetensors").exists()
    assert (tmp_path / "fsdp" / "checkpoint" / "tokenizer.json").exists()

    # One process with the same global batch (4 x 2 x 1 = 2 x 2 x 2): the same losses.
    single = _config(tmp_path, "single", per_device_batch_size=4)
    _run([sys.executable, "-m", "longcurate", "train", "fit", "-c", str(single)], run_group)
    single_losses = [h["loss"] for h in _stats(tmp_path, "single")["log_history"]]
    assert single_losses == pytest.approx(losses, abs=2e-3)

    # Kill after step 5 (simulated: drop the end of the run) and resume: it continues at step 6.
    shutil.rmtree(tmp_path / "fsdp" / "checkpoint")
    shutil.rmtree(tmp_path / "fsdp" / "train" / "checkpoint-10")
    _torchrun(cfg, run_group)
    resumed = _stats(tmp_path, "fsdp")
    assert resumed["resumed_from"].endswith("checkpoint-5") and resumed["steps"] == 10
    steps = [h["step"] for h in resumed["log_history"]]
    assert steps == list(range(1, 11))
    assert resumed["log_history"][5]["loss"] == pytest.approx(losses[5], abs=2e-3)  # same weights at step 6
    state = json.loads((tmp_path / "fsdp" / "train" / "checkpoint-10" / "trainer_state.json").read_text())
    assert state["global_step"] == 10

    # A finished run is a no-op.
    out = _torchrun(cfg, run_group)
    assert '"skipped": true' in out.stdout


HOOK_CHECK = """
import torch, torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from torch.distributed.device_mesh import init_device_mesh
from longcurate.train.launch import accept_full_state_dict
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:PORT", rank=0, world_size=1)
model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 2))
fully_shard(model, mesh=init_device_mesh("cpu", (1,)))
full = {k: torch.randn_like(v.full_tensor()) for k, v in model.state_dict().items()}
try:
    model.load_state_dict(full)
    raise SystemExit("a sharded model took a full state dict without the hook")
except RuntimeError as e:
    assert "DTensor" in str(e), e
accept_full_state_dict(model)
model.load_state_dict(full)
assert all(torch.equal(v.full_tensor(), full[k]) for k, v in model.state_dict().items())
dist.destroy_process_group()
print("ok")
"""


def test_sharded_model_takes_the_full_checkpoint_weights(run_group):
    """The Trainer's public resume path restores weights with `model.load_state_dict(full)`; a model
    sharded at load time (CPU FSDP) takes them through `accept_full_state_dict`'s load pre-hook."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _run([sys.executable, "-c", HOOK_CHECK.replace("PORT", str(port))], run_group)
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize("name", ["ds_zero2.json", "ds_zero3.json"])
def test_deepspeed_configs_match_trainer_arguments(name):
    """DeepSpeed's ZeRO stages do not run under the Trainer on this CPU-only machine (see the report);
    the configs are checked against what the Trainer fills in."""
    conf = json.loads((ROOT / "configs" / name).read_text())
    assert conf["zero_optimization"]["stage"] == int(name[7])
    for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                "gradient_clipping"):
        assert conf[key] == "auto", f"{key} must be 'auto' so TrainingArguments fills it"
    assert conf["bf16"]["enabled"] == "auto"
    if conf["zero_optimization"]["stage"] == 3:
        assert conf["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True  # eval loads it
    pytest.importorskip("deepspeed")
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    args = TrainingArguments(output_dir="/tmp/unused", per_device_train_batch_size=2, gradient_accumulation_steps=3,
                             max_grad_norm=0.5, bf16=True, use_cpu=True, report_to=[])
    filled = HfTrainerDeepSpeedConfig(str(ROOT / "configs" / name))
    filled.trainer_config_process(args)
    assert filled.config["train_micro_batch_size_per_gpu"] == 2
    assert filled.config["gradient_accumulation_steps"] == 3
    assert filled.config["train_batch_size"] == 6  # x world size 1
    assert filled.config["gradient_clipping"] == 0.5
    assert filled.config["bf16"]["enabled"] is True
    assert filled.is_zero3() == (name == "ds_zero3.json")


def test_fsdp_config_reads_for_the_trainer():
    from longcurate.train.trainer import fsdp_settings

    on, conf = fsdp_settings("full_shard", str(ROOT / "configs" / "fsdp.yaml"))
    assert on and conf["version"] == 2 and conf["reshard_after_forward"] is True
    assert conf["cpu_offload"] is False and conf["state_dict_type"] == "FULL_STATE_DICT"
    assert fsdp_settings("", None) == (False, None)
    from longcurate.train.config import TrainConfig

    with pytest.raises(ValueError, match="train.fsdp"):  # an unknown option is refused with the config
        TrainConfig(fsdp="bogus")
