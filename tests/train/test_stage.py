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

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.parametrize("override, named", [("train.max_steps=0", "max_steps"), ("train.epochs=0", "epochs")])
def test_fit_refuses_a_run_of_no_optimiser_step_before_reading_anything(tmp_path, capsys, override, named):
    """Exit 2 in one line, before the data or the model is looked at (neither exists here)."""
    from longcurate.cli import main

    for verb in ("fit", "run"):
        assert main(["train", verb, f"output_dir={tmp_path / 'run'}", "model=/nowhere/model", override]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "run").exists()
