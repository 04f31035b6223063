"""Trainer checkpoints on disk: a checkpoint cut short (killed mid-save: a truncated file, no
trainer_state.json) is moved aside and the run resumes from the previous one to the same weights as an
uninterrupted run; checkpoints resume only under their settings; optimizer state is kept only where a
resume needs it; the final model is saved in the training dtype."""

from __future__ import annotations

import copy
import json
import shutil
import struct
from pathlib import Path

import pytest

from longcurate.core.errors import ConfigError, SettingsChanged
from longcurate.train.config import TrainConfig
from longcurate.train.checkpoints import (checkpoint_problems, move_aside, resumable_checkpoint, safetensors_problem,
                                          save_dtype_name)


class Interrupted(Exception):
    """What a kill looks like to the test: the run stops right after a checkpoint is saved."""


def stop_after_save(step: int):
    from transformers import TrainerCallback

    class StopAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Interrupted(f"stopped after saving checkpoint-{step}")

    return StopAfterSave()


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _prepare(run_cfg):
    """Mix and tokenize once; save a checkpoint at every step."""
    from longcurate.train.stage import run_mix, run_tokenize

    run_cfg.train.save_steps = 1
    run_cfg.train.save_total_limit = 3
    run_mix(run_cfg, progress=False)
    run_tokenize(run_cfg, progress=False)
    return run_cfg


def _interrupted_at_2(run_cfg) -> Path:
    from longcurate.train.stage import run_fit

    with pytest.raises(Interrupted):
        run_fit(run_cfg, callbacks=[stop_after_save(2)])
    ckpts = Path(run_cfg.output_dir) / "train"
    assert not (Path(run_cfg.output_dir) / "checkpoint.done").exists()
    # only the newest checkpoint keeps the optimizer state a resume needs
    assert (ckpts / "checkpoint-2" / "optimizer.pt").exists()
    assert (ckpts / "checkpoint-1" / "model.safetensors").exists() and not (ckpts / "checkpoint-1" / "optimizer.pt").exists()
    return ckpts


def _tear(ckpt: Path, how: str) -> None:
    if how == "truncated weights":
        data = (ckpt / "model.safetensors").read_bytes()
        (ckpt / "model.safetensors").write_bytes(data[:len(data) // 2])
    elif how == "no trainer_state.json":
        (ckpt / "trainer_state.json").unlink()
    else:  # a half-written optimizer.pt (a zip without its central directory)
        data = (ckpt / "optimizer.pt").read_bytes()
        (ckpt / "optimizer.pt").write_bytes(data[:len(data) - 100])


@pytest.mark.parametrize("how", ["truncated weights", "no trainer_state.json", "truncated optimizer"])
def test_torn_checkpoint_is_moved_aside_and_resume_gives_the_same_weights(run_cfg, tmp_path, how, caplog):
    """Killed while checkpoint-3 was being written: the re-run moves it aside with a warning, resumes
    from checkpoint-2 and ends with the weights of an uninterrupted run (same thread count)."""
    from longcurate.train.stage import run_fit

    reference = copy.deepcopy(run_cfg)
    reference.output_dir = str(tmp_path / "reference")
    shutil.copytree(Path(run_cfg.output_dir), tmp_path / "reference")
    run_fit(_prepare(reference))
    want = _weights(tmp_path / "reference" / "checkpoint")

    ckpts = _interrupted_at_2(_prepare(run_cfg))
    shutil.copytree(ckpts / "checkpoint-2", ckpts / "checkpoint-3")  # checkpoint-3, cut short by the kill
    _tear(ckpts / "checkpoint-3", how)
    assert checkpoint_problems(ckpts / "checkpoint-3")
    with caplog.at_level("WARNING", logger="longcurate.train"):
        stats = run_fit(run_cfg)
    assert any("checkpoint-3 is incomplete" in r.getMessage() for r in caplog.records)
    assert stats["resumed_from"].endswith("checkpoint-2") and stats["steps"] == 3
    assert (ckpts / "incomplete" / "checkpoint-3.incomplete-1").is_dir()
    got = _weights(Path(run_cfg.output_dir) / "checkpoint")
    assert got.keys() == want.keys()
    assert all(bool((got[k] == want[k]).all()) for k in want)


def test_checkpoints_resume_only_under_their_settings(run_cfg):
    """Trainer checkpoints are the model step's partial output: an interrupted run's newest checkpoint
    is refused under other settings (never silently mixed) and resumed under equal ones."""
    from longcurate.train.stage import run_fit

    _interrupted_at_2(_prepare(run_cfg))
    other = copy.deepcopy(run_cfg)
    other.train.learning_rate = 2e-3
    with pytest.raises(SettingsChanged, match="learning_rate"):
        run_fit(other)
    resumed = run_fit(run_cfg)
    assert resumed["resumed_from"].endswith("checkpoint-2") and resumed["steps"] == 3
    out = Path(run_cfg.output_dir)
    assert (out / "checkpoint" / "model.safetensors").exists()
    # the model is finished: no checkpoint keeps optimizer, scheduler or RNG state any more
    leftovers = [p.name for p in (out / "train").rglob("*") if p.name in ("optimizer.pt", "scheduler.pt")
                 or p.name.startswith("rng_state")]
    assert leftovers == []
    assert (out / "train" / "checkpoint-3" / "model.safetensors").exists()


@pytest.mark.parametrize("save_dtype, want", [("auto", "float32"), ("bf16", "bfloat16")])
def test_final_model_dtype(run_cfg, save_dtype, want):
    """`train.save_dtype: auto` saves in the training dtype (fp32 here; bf16 under bf16 mixed
    precision), not the fp32 master weights whatever the precision; the model loads back."""
    from transformers import AutoModelForCausalLM

    from longcurate.train.stage import run_stage

    run_cfg.train.save_dtype = save_dtype
    run_stage(run_cfg)
    model_dir = Path(run_cfg.output_dir) / "checkpoint"
    assert {str(t.dtype) for t in _weights(model_dir).values()} == {f"torch.{want}"}
    assert json.loads((model_dir / "config.json").read_text())["dtype"] == want
    assert str(AutoModelForCausalLM.from_pretrained(str(model_dir), dtype="auto").dtype) == f"torch.{want}"


def test_save_dtype_names():
    assert save_dtype_name("auto", "bf16") == "bfloat16" and save_dtype_name("auto", "fp32") == "float32"
    assert save_dtype_name("fp16", "bf16") == "float16"
    with pytest.raises(ConfigError, match="train.save_dtype"):  # the config refuses it, before training
        TrainConfig(save_dtype="int8")


def _fake_checkpoint(folder: Path, step: int, *, optimizer: bool = True) -> Path:
    """A checkpoint folder with a small but well-formed safetensors file and torch zip files."""
    import torch
    from safetensors.torch import save_file

    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    save_file({"w": torch.zeros(4, 4)}, str(ckpt / "model.safetensors"))
    torch.save({"step": step}, ckpt / "training_args.bin")
    if optimizer:
        torch.save({"state": {}}, ckpt / "optimizer.pt")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return ckpt


def test_completeness_checks(tmp_path):
    ok = _fake_checkpoint(tmp_path, 1)
    assert checkpoint_problems(ok) == [] and safetensors_problem(ok / "model.safetensors") is None
    longer = _fake_checkpoint(tmp_path, 2)
    with open(longer / "model.safetensors", "ab") as f:
        f.write(b"\0" * 8)  # longer than its header says: not the file that was written
    assert "header needs" in checkpoint_problems(longer)[0]
    bad_state = _fake_checkpoint(tmp_path, 3)
    (bad_state / "trainer_state.json").write_text('{"global_st')
    assert checkpoint_problems(bad_state) == ["trainer_state.json missing or unreadable"]
    no_weights = _fake_checkpoint(tmp_path, 4)
    (no_weights / "model.safetensors").unlink()
    assert checkpoint_problems(no_weights) == ["no model weights"]
    tiny = _fake_checkpoint(tmp_path, 5)
    (tiny / "model.safetensors").write_bytes(struct.pack("<Q", 10**6))
    assert "truncated header" in checkpoint_problems(tiny)[0]


def test_resumable_checkpoint_moves_torn_ones_aside_and_passes_over_finished_ones(tmp_path):
    _fake_checkpoint(tmp_path, 1)
    _fake_checkpoint(tmp_path, 2, optimizer=False)  # a finished run's: weights only
    torn = _fake_checkpoint(tmp_path, 3)
    (torn / "trainer_state.json").unlink()
    assert resumable_checkpoint(tmp_path, move=False) == str(tmp_path / "checkpoint-1")
    assert torn.is_dir()  # `move=False` (the launch's other processes) only looks
    assert resumable_checkpoint(tmp_path, need_optimizer=False) == str(tmp_path / "checkpoint-2")
    assert not torn.exists() and (tmp_path / "incomplete" / "checkpoint-3.incomplete-1").is_dir()
    again = _fake_checkpoint(tmp_path, 3)
    (again / "trainer_state.json").unlink()
    assert move_aside(again) == tmp_path / "incomplete" / "checkpoint-3.incomplete-2"
    assert resumable_checkpoint(tmp_path / "missing") is None


def test_a_full_disk_while_saving_the_model_names_the_folder_and_leaves_no_half_file(tmp_path, monkeypatch):
    """safetensors reports a full disk as its own error type, not an OSError; the trainer's saves run
    under `core.jsonl.naming`, so the CLI prints its one line for a full disk (naming the model folder),
    and the half-written copy of the weights is removed."""
    import errno

    import safetensors.torch
    import torch
    from safetensors import SafetensorError

    from longcurate.cli import user_error_message
    from longcurate.core.jsonl import naming
    from longcurate.train.checkpoints import cast_saved_model

    safetensors.torch.save_file({"w": torch.ones(4, dtype=torch.float32)}, str(tmp_path / "model.safetensors"))
    before = (tmp_path / "model.safetensors").read_bytes()

    def full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(OSError) as info, naming(tmp_path):
        cast_saved_model(tmp_path, "bfloat16")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path)
    assert user_error_message(info.value) == f"No space left on device: {tmp_path}; free some space or write elsewhere"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert (tmp_path / "model.safetensors").read_bytes() == before

    def other(tensors, filename, metadata=None):
        raise SafetensorError("Error while serializing: tensor is not contiguous")

    monkeypatch.setattr(safetensors.torch, "save_file", other)
    with pytest.raises(SafetensorError), naming(tmp_path):  # any other error stays itself
        cast_saved_model(tmp_path, "bfloat16")
