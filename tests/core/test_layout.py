"""Every path of a run comes from one place."""

from pathlib import Path

import pytest

from longcurate.config import RunConfig
from longcurate.core.config import build
from longcurate.core.errors import UserError
from longcurate.core.eval_layout import model_label
from longcurate.core.jsonl import write_jsonl
from longcurate.core.layout import RunLayout, budget_name, parse_budget, part_path, part_paths


def test_default_layout_under_output_dir():
    lay = RunConfig(output_dir="runs/x").layout()
    assert lay.samples == Path("runs/x/samples.jsonl")
    assert lay.score("hmg") == Path("runs/x/select/hmg.jsonl") and lay.ranked == Path("runs/x/select/ranked.jsonl")
    assert lay.budget("gateau", 1000) == Path("runs/x/budgets/gateau-1000.jsonl")
    assert lay.budget("random", 0.25) == Path("runs/x/budgets/random-0.25.jsonl")
    assert lay.mixture == Path("runs/x/mixture/mixture.jsonl") and lay.tokenized == Path("runs/x/mixture/tokenized")
    assert lay.model == Path("runs/x/checkpoint") and lay.checkpoints == Path("runs/x/train")
    assert lay.probes == Path("runs/x/eval/probes.jsonl") and lay.eval_model("base") == Path("runs/x/eval/base")
    assert lay.manifest("select") == Path("runs/x/select.manifest.json")


def test_config_places_paths_elsewhere():
    cfg = RunConfig(output_dir="runs/x")
    cfg.synth.output = "/data/s.jsonl"
    cfg.train.output = "/models/final"
    cfg.eval.output_dir = "/ev"
    lay = cfg.layout()
    assert lay.samples == Path("/data/s.jsonl") and lay.model == Path("/models/final")
    assert lay.probes == Path("/ev/probes.jsonl")  # follows the placed eval folder
    assert lay.manifest("eval") == Path("runs/x/eval.manifest.json")  # manifests stay in one place


def test_top_budget_from_the_index_or_the_sizes(tmp_path):
    assert RunLayout.under(tmp_path).top_budget("gateau") == tmp_path / "budgets/gateau-1000.jsonl"
    lay = RunLayout.under(tmp_path, [0.1, 1000, 3000])
    assert lay.top_budget("gateau") == tmp_path / "budgets/gateau-3000.jsonl"
    assert RunLayout.under(tmp_path, [0.25, 0.5]).top_budget("gateau") == tmp_path / "budgets/gateau-0.5.jsonl"
    write_jsonl(lay.budget_index, [{"file": "gateau-0.5.jsonl", "samples": 25},
                                   {"file": "gateau-1000.jsonl", "samples": 50}, {"file": "random-1000.jsonl", "samples": 50}])
    assert RunLayout.under(tmp_path, [0.5]).top_budget("gateau") == tmp_path / "budgets/gateau-1000.jsonl"


def test_the_run_config_gives_the_layout_its_budgets():
    """train's default long data is select's top budget: the layout names it from `select.budgets`."""
    cfg = build(RunConfig, {"output_dir": "runs/x", "select": {"budgets": [0.5, 200]}})
    assert cfg.layout().top_budget("gateau") == Path("runs/x/budgets/gateau-200.jsonl")


@pytest.mark.parametrize("spec, label", [(1000, "1000"), ("3000", "3000"), (0.1, "0.1"), (0.25, "0.25")])
def test_budget_labels(spec, label):
    assert parse_budget(spec)[0] == label and budget_name("gateau", spec) == f"gateau-{label}.jsonl"


@pytest.mark.parametrize("bad", [0, -5, 2.5, "lots"])
def test_bad_budgets_are_user_errors(bad):
    with pytest.raises(UserError):
        parse_budget(bad)


def test_part_and_label_names():
    assert part_path("a/hmg.jsonl", 3, 8) == Path("a/hmg.part-3-of-8.jsonl")
    assert model_label("runs/demo/checkpoint") == "checkpoint" and model_label("org/My Model") == "My_Model"


def test_part_paths_finds_every_shard_count_of_one_output_only(tmp_path):
    for name in ("hmg.part-0-of-2.jsonl", "hmg.part-1-of-2.jsonl", "hmg.part-0-of-1.jsonl", "cam.part-0-of-1.jsonl",
                 "hmg.jsonl", "hmg.part-0-of-1.jsonl.done", "hmg.part-0-of-1.rejected.jsonl", "hmg.part-x-of-1.jsonl"):
        (tmp_path / name).write_text("")
    assert [p.name for p in part_paths(tmp_path / "hmg.jsonl")] == [
        "hmg.part-0-of-1.jsonl", "hmg.part-0-of-2.jsonl", "hmg.part-1-of-2.jsonl"]
