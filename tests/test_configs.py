"""Every config file in configs/ loads: the pipeline YAMLs into RunConfig (unknown keys are errors),
the DeepSpeed JSON files and the accelerate FSDP YAML as their formats."""

import json
from pathlib import Path

import pytest
import yaml

from longcurate.config import RunConfig
from longcurate.core.config import build, load_yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RUN_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml") if p.name != "fsdp.yaml")


def test_there_are_configs():
    assert {p.name for p in RUN_CONFIGS} >= {"demo.yaml", "paper-7b.yaml"}


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.name)
def test_run_config_loads(path):
    cfg = build(RunConfig, load_yaml(path), where=str(path))
    assert cfg.output_dir


def test_other_config_files_parse():
    for p in CONFIGS.glob("*.json"):
        assert isinstance(json.loads(p.read_text()), dict), p
    assert isinstance(yaml.safe_load((CONFIGS / "fsdp.yaml").read_text()), dict)
