"""The select stage's paths and steps (no model needed): the layout's names, each step's policy, the config rule for `window`, the reject sinks, and user errors on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longcurate.config import RunConfig
from longcurate.core.config import build
from longcurate.core.errors import SettingsChanged, UserError
from longcurate.core.jsonl import DiscardRejects, Rejects, file_digest, write_jsonl
from longcurate.core.runner import run_step, step_state
from longcurate.select.rejects import ShardRejects
from longcurate.select.sample_index import CountedRejects
from longcurate.select.shard import ShardSpec
from longcurate.select.steps import ScoreSteps, cam_scores, input_path, score_settings


def _cfg(tmp_path: Path, **select) -> RunConfig:
    return build(RunConfig, {"output_dir": str(tmp_path / "run"), "select": select})


def test_window_zero_means_the_full_input(tmp_path):
    assert _cfg(tmp_path, window=0, model_a="other").select.window is None
    assert _cfg(tmp_path, window=None, model_a="other").select.window is None
    assert _cfg(tmp_path, window=512).select.window == 512


def test_paths_come_from_the_layout(tmp_path):
    cfg = _cfg(tmp_path)
    run = tmp_path / "run"
    assert input_path(cfg) == run / "samples.jsonl"
    assert ScoreSteps.of(cfg, "hmg").output == run / "select/hmg.jsonl"
    assert ScoreSteps.of(cfg, "cam").part(3, 8).output == run / "select/cam.part-3-of-8.jsonl"
    assert cam_scores(cfg) == run / "select/cam.jsonl"
    assert cam_scores(_cfg(tmp_path, cam=False)) is None
    other = _cfg(tmp_path, input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "x.jsonl"))
    assert input_path(other) == tmp_path / "in.jsonl"
    assert ScoreSteps.of(other, "hmg").output == tmp_path / "x.jsonl"
    # inputs are recorded by their content, not their path
    (tmp_path / "in.jsonl").write_text('{"id": "a"}\n')
    assert score_settings(other, "hmg")["input_sha256"] == file_digest(tmp_path / "in.jsonl")
    moved = _cfg(tmp_path, input=str(tmp_path / "moved.jsonl"))
    (tmp_path / "moved.jsonl").write_text('{"id": "a"}\n')
    assert score_settings(moved, "hmg") == score_settings(other, "hmg")
    with pytest.raises(UserError, match="unknown score kind"):
        ScoreSteps.of(cfg, "ppl")


def test_parts_share_refused_scoring_settings_and_merge_redoes_on_hmg_scale(tmp_path):
    cfg = _cfg(tmp_path, window=256)
    steps = ScoreSteps.of(cfg, "hmg")
    part = steps.part(0, 1)
    assert part.on_change == "refuse" and part.resumable and steps.merged().on_change == "redo"
    assert part.begun_at == tmp_path / "run/select/hmg.jsonl.settings.json"  # one for every shard

    def write(run):
        write_jsonl(run.output, [{"id": "a"}])
        return {"written": 1}

    run_step(part, write)
    recorded = json.loads((tmp_path / "run/select/hmg.jsonl.settings.json").read_text())
    assert recorded == json.loads(json.dumps(score_settings(cfg, "hmg")))
    other = ScoreSteps.of(_cfg(tmp_path, window=128), "hmg")
    with pytest.raises(SettingsChanged, match="window: 256 -> 128"):
        run_step(other.part(1, 2), write)  # another shard of the same score file, under other settings

    run_step(steps.merged(), write)
    marker = json.loads((tmp_path / "run/select/hmg.jsonl.done").read_text())
    assert marker == {"written": 1, "params": {**recorded, "hmg_scale": "log"}}
    assert step_state(steps.merged()) == {"written": 1}
    rescaled = ScoreSteps.of(_cfg(tmp_path, window=256, hmg_scale="ppl"), "hmg")
    assert step_state(rescaled.merged()) is None  # re-merge ...
    assert step_state(rescaled.part(0, 1)) == {"written": 1}  # ... of the parts scored under the same settings
    assert ScoreSteps.recorded(_cfg(tmp_path, window=64), "hmg").settings == recorded


def test_recorded_needs_a_scoring_run(tmp_path):
    with pytest.raises(UserError, match="nothing was scored"):
        ScoreSteps.recorded(_cfg(tmp_path), "cam")


def test_reject_sinks(tmp_path):
    valid = [0]
    recorded = CountedRejects(lambda: valid[0])
    for line in (1, 2, 3, 4):
        recorded.add(f"bad {line}", file="in.jsonl", line=line, record_id=f"r{line}")
        valid[0] += 1  # a valid sample after each bad line
    DiscardRejects().add("ignored", file="in.jsonl", line=1)
    with Rejects(tmp_path / "q.jsonl") as q:
        recorded.replay(ShardRejects(q, ShardSpec(1, 2)))
    rows = [json.loads(x) for x in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [(r["line"], r["id"], r["reason"]) for r in rows] == [(1, "r1", "bad 1"), (3, "r3", "bad 3")]
    with Rejects(tmp_path / "q2.jsonl") as q:
        recorded.replay(q, limit=2)  # a pass that stops at its 2nd valid sample never reads lines 3 and 4
    assert [json.loads(x)["line"] for x in (tmp_path / "q2.jsonl").read_text().splitlines()] == [1, 2]


def test_budget_sizes_must_be_numbers(capsys):
    from longcurate.cli import main

    assert main(["select", "budget", "1000", "lots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["longcurate: error: command line: 'select.budgets[1]' must be a number, got 'lots'"]
