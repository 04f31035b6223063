"""The train stage end to end on a tiny model: the largest budget is mixed with short chat data,
tokenized, trained for a few steps and saved; the manifest shows exactly the budget's long samples;
a re-run redoes nothing, and a finished model refuses other settings. Also: every config file of
this stage loads."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from longcurate.core.config import build
from longcurate.core.jsonl import write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def _long(i: int) -> dict:
    ctx = " ".join(f"Fact {j}: item {i}-{j} is blue." for j in range(20))
    ins, resp = f"What colour is item {i}-3?", f"Item {i}-3 is blue."
    return {"id": f"long-{i}", "kind": "fine", "context": ctx, "instruction": ins, "response": resp,
            "messages": [{"role": "user", "content": f"{ctx}\n\n{ins}"}, {"role": "assistant", "content": resp}]}


def _short(i: int) -> dict:
    return {"id": f"short-{i}", "conversations": [{"from": "human", "value": f"Say {i}."},
                                                   {"from": "gpt", "value": f"{i}."},
                                                   {"from": "human", "value": "Again?"},
                                                   {"from": "gpt", "value": f"{i} again."}]}


@pytest.fixture
def run_cfg(tmp_path, tokenizer):
    from longcurate.config import RunConfig
    from oracles.models import random_llama

    budgets = tmp_path / "run" / "budgets"
    write_jsonl(budgets / "gateau-6.jsonl", [_long(i) for i in range(6)])
    write_jsonl(budgets / "gateau-3.jsonl", [_long(i) for i in range(3)])
    write_jsonl(budgets / "budgets.jsonl", [{"file": "gateau-3.jsonl", "samples": 3},
                                            {"file": "gateau-6.jsonl", "samples": 6}])
    write_jsonl(tmp_path / "short.jsonl", [_short(i) for i in range(20)])
    random_llama(seed=0).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    return build(RunConfig, {
        "output_dir": str(tmp_path / "run"), "model": str(tmp_path / "model"), "stages": ["train"],
        "train": {"mix": {"short": str(tmp_path / "short.jsonl"), "short_size": 4},
                  "tokenize": {"max_length": 512}, "max_steps": 3, "per_device_batch_size": 2,
                  "precision": "fp32", "learning_rate": 1e-3, "batching": "packed", "max_tokens": 512}})


def test_stage_end_to_end_and_resume(run_cfg):
    from longcurate.train.stage import default_long_inputs, run_stage

    assert default_long_inputs(run_cfg)[0].endswith("gateau-6.jsonl")  # the largest budget
    stats = run_stage(run_cfg)
    out = Path(run_cfg.output_dir)
    assert (out / "checkpoint" / "model.safetensors").exists() and (out / "checkpoint" / "tokenizer.json").exists()
    assert (out / "checkpoint" / "config.json").exists()  # what eval looks for in the layout's model folder
    manifest = json.loads((out / "train.manifest.json").read_text())
    assert manifest["stats"]["mix"]["long"] == 6 and manifest["stats"]["mix"]["short"] == 4
    assert manifest["stats"]["train"]["dataset"]["long_samples"] == 6  # the budget, exactly
    assert manifest["stats"]["train"]["dataset"]["short_samples"] == 4
    assert stats["train"]["steps"] == 3
    # Each step's marker holds its stats and settings.
    assert json.loads((out / "mixture" / "mixture.jsonl.done").read_text())["long"] == 6
    assert json.loads((out / "mixture" / "tokenized.done").read_text())["by_source"] == {"long": 6, "short": 4}
    model_marker = json.loads((out / "checkpoint.done").read_text())
    assert model_marker["steps"] == 3 and model_marker["params"]["learning_rate"] == 1e-3
    outputs = [out / "checkpoint" / "model.safetensors", out / "train.manifest.json", out / "mixture" / "mixture.jsonl",
               out / "mixture" / "tokenized" / "data-00000-of-00001.arrow", out / "checkpoint.done"]
    before = [p.stat().st_mtime_ns for p in outputs]
    again = run_stage(run_cfg)
    assert again.get("skipped") is True
    assert all(s.get("skipped") is True for s in (again["mix"], again["tokenize"], again["train"]))
    assert [p.stat().st_mtime_ns for p in outputs] == before  # nothing rewritten, the manifest included


def test_finished_model_refuses_other_settings_or_data(run_cfg):
    """The model step's policy is `refuse`: a finished model asked for with other train settings or
    other data stays as it is, and the run stops naming what changed."""
    from longcurate.core.errors import SettingsChanged
    from longcurate.train.stage import run_stage

    run_stage(run_cfg)
    weights = Path(run_cfg.output_dir) / "checkpoint" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    other_lr = copy.deepcopy(run_cfg)
    other_lr.train.learning_rate = 2e-3
    with pytest.raises(SettingsChanged, match="learning_rate"):
        run_stage(other_lr)
    other_data = copy.deepcopy(run_cfg)
    other_data.train.mix.short_size = 3  # mix and tokenize redo; the model refuses
    with pytest.raises(SettingsChanged, match="dataset_sha256"):
        run_stage(other_data)
    assert weights.stat().st_mtime_ns == before


def test_checkpoints_resume_only_under_their_settings(run_cfg):
    """Trainer checkpoints are the model step's partial output: with the final model gone, the last
    checkpoint resumes under equal settings and is refused under others (never silently mixed)."""
    import shutil

    from longcurate.core.errors import SettingsChanged
    from longcurate.train.stage import run_fit, run_stage

    run_stage(run_cfg)
    out = Path(run_cfg.output_dir)
    assert (out / "train" / "checkpoint-3").is_dir()
    shutil.rmtree(out / "checkpoint")
    other = copy.deepcopy(run_cfg)
    other.train.learning_rate = 2e-3
    with pytest.raises(SettingsChanged, match="learning_rate"):
        run_fit(other)
    resumed = run_fit(run_cfg)
    assert resumed["resumed_from"].endswith("checkpoint-3") and resumed["steps"] == 3
    assert (out / "checkpoint" / "model.safetensors").exists()


def test_default_long_input_without_index(tmp_path):
    from longcurate.config import RunConfig
    from longcurate.train.stage import default_long_inputs

    cfg = build(RunConfig, {"output_dir": str(tmp_path)})
    assert default_long_inputs(cfg) == [str(tmp_path / "budgets" / "gateau-5000.jsonl")]


@pytest.mark.parametrize("name", ["ds_zero2.json", "ds_zero3.json", "fsdp.yaml"])
def test_stage_config_files_load(name):
    import yaml

    data = yaml.safe_load((ROOT / "configs" / name).read_text())
    assert isinstance(data, dict) and data


def test_train_config_rejects_unknown_keys():
    from longcurate.config import RunConfig
    from longcurate.core.config import ConfigError

    with pytest.raises(ConfigError, match="batchng"):
        build(RunConfig, {"train": {"batchng": "sorted"}})
