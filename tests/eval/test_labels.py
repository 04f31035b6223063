"""Eval results are keyed by model (issue 15): one folder per label, a model's predictions are never
reused for or reported as another's, and one generation length rule (`--max-new-tokens` >
`eval.generate.max_new_tokens` > the benchmark's own) for every eval command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longcurate.cli import main


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def longbench_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_jsonl(data / "hotpotqa.jsonl", [
        {"_id": f"h{i}", "input": q, "context": c, "answers": [a], "length": 20, "all_classes": None, "dataset": "hotpotqa"}
        for i, (q, c, a) in enumerate([("Capital of France?", "Paris is the capital of France.", "Paris"),
                                       ("Capital of Italy?", "Rome is the capital of Italy.", "Rome")])])
    return data


@pytest.fixture()
def recorded(monkeypatch):
    """The max_new_tokens of every request the real HF generator is given."""
    from longcurate.eval.hf_backend import HFModel

    seen: list[tuple[str, int]] = []
    real = HFModel.generate

    def generate(self, requests):
        seen.extend((r.id, r.max_new_tokens) for r in requests)
        return real(self, requests)

    monkeypatch.setattr(HFModel, "generate", generate)
    return seen


def test_two_models_on_the_same_data_get_two_prediction_sets_each_naming_its_model(
        tmp_path, longbench_data, model_dirs, recorded, capsys):
    out = tmp_path / "eval"
    common = ["eval", "longbench", "--data-dir", str(longbench_data), "--output-dir", str(out), "--backend", "hf",
              "eval.generate.dtype=float32", "eval.generate.max_new_tokens=8"]
    results = {}
    for name in ("base", "checkpoint"):
        model = str(model_dirs / name)
        recorded.clear()
        assert main([*common, "--model", model]) == 0
        assert sorted(recorded) == [("h0", 8), ("h1", 8)]  # each model predicted for itself; the config's length
        pred_dir = out / name / "longbench" / "pred"
        results[name] = json.loads((pred_dir / "result.json").read_text())
        assert results[name]["model"] == model and results[name]["label"] == name
        assert results[name]["max_new_tokens"] == {"hotpotqa": 8}
        assert json.loads((out / name / "model.json").read_text())["model"] == str(Path(model).resolve())
        preds = lines(pred_dir / "hotpotqa.jsonl")
        assert {p["model"] for p in preds} == {model}
        for p in preds:  # eval.generate.max_new_tokens=8 bounds what is generated (a token starts at most one word)
            assert 0 < len(p["pred"].split()) <= 8, p["pred"]
    assert lines(out / "base" / "longbench" / "pred" / "hotpotqa.jsonl") != \
        lines(out / "checkpoint" / "longbench" / "pred" / "hotpotqa.jsonl")  # two models, two prediction sets
    assert "model: " + str(model_dirs / "checkpoint") in capsys.readouterr().out

    # the same model and settings again: nothing predicted, the same result
    first = (out / "base" / "longbench" / "pred" / "result.json").read_bytes()
    recorded.clear()
    assert main([*common, "--model", str(model_dirs / "base")]) == 0
    assert recorded == [] and (out / "base" / "longbench" / "pred" / "result.json").read_bytes() == first

    # another generation length: the flag wins over the config key, and every prediction is redone
    longer = {p["_id"]: p["pred"] for p in lines(out / "base" / "longbench" / "pred" / "hotpotqa.jsonl")}
    assert main([*common, "--model", str(model_dirs / "base"), "--max-new-tokens", "3"]) == 0
    assert sorted(recorded) == [("h0", 3), ("h1", 3)]
    for p in lines(out / "base" / "longbench" / "pred" / "hotpotqa.jsonl"):
        assert len(p["pred"].split()) <= 3 and len(p["pred"]) < len(longer[p["_id"]])

    # another model under a label that holds one: refused, naming both; nothing written there
    recorded.clear()
    before = (out / "base" / "longbench" / "pred" / "hotpotqa.jsonl").read_bytes()
    assert main([*common, "--model", str(model_dirs / "checkpoint"), "--label", "base"]) == 2
    err = capsys.readouterr().err
    assert "holds the results of" in err and "--label" in err and str(model_dirs / "checkpoint") in err
    assert recorded == [] and (out / "base" / "longbench" / "pred" / "hotpotqa.jsonl").read_bytes() == before


def test_a_checkpoint_retrained_in_place_is_predicted_again(tmp_path, model_dirs):
    """The same path, other training settings (its `.done` marker): the request hash changes."""
    import shutil

    from longcurate.core.jsonl import write_json
    from longcurate.eval.labels import model_identity

    model = tmp_path / "checkpoint"
    shutil.copytree(model_dirs / "checkpoint", model)
    assert model_identity(str(model)) == {"model": str(model)}
    write_json(tmp_path / "checkpoint.done", {"steps": 2, "params": {"learning_rate": 1e-4}})
    first = model_identity(str(model))
    write_json(tmp_path / "checkpoint.done", {"steps": 2, "params": {"learning_rate": 2e-4}})
    assert first["made_with"] != model_identity(str(model))["made_with"]


def test_the_generation_length_rule(tmp_path):
    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from longcurate.core.errors import ConfigError
    from longcurate.eval.longbench import task_lengths

    cfg = build(RunConfig, {"output_dir": str(tmp_path)})
    assert cfg.eval.generate.new_tokens(cfg.eval.probes.max_new_tokens) == 32  # the benchmark's own
    assert task_lengths(cfg, ["hotpotqa", "trec"]) == {"hotpotqa": 32, "trec": 64}  # LongBench's per task
    maxlen = tmp_path / "maxlen.json"
    maxlen.write_text(json.dumps({"hotpotqa": 5}))
    cfg.eval.longbench.maxlen_file = str(maxlen)
    assert task_lengths(cfg, ["hotpotqa", "trec"]) == {"hotpotqa": 5, "trec": 64}  # the file, else LongBench's
    cfg.eval.generate.max_new_tokens = 7
    assert task_lengths(cfg, ["hotpotqa", "trec"]) == {"hotpotqa": 7, "trec": 7}  # the config key over both
    assert cfg.eval.generate.new_tokens(cfg.eval.needle.max_new_tokens) == 7
    with pytest.raises(ConfigError, match="max_new_tokens"):
        build(RunConfig, {"eval": {"generate": {"max_new_tokens": 0}}})


def test_probes_take_the_flag_and_refuse_another_model_in_their_folder(tmp_path, model_dirs, recorded, capsys):
    out = tmp_path / "run"
    common = ["eval", "probes", f"output_dir={out}", "eval.probes.context_tokens=256", "eval.probes.num_positions=2",
              "eval.probes.tasks=[document]", "eval.generate.dtype=float32", "--limit", "2"]
    assert main([*common, "--model", str(model_dirs / "base"), "--max-new-tokens", "4"]) in (0, 75)
    assert recorded and {n for _, n in recorded} == {4}
    res = json.loads((out / "eval" / "base" / "probes" / "results.json").read_text())
    assert res["model"] == str(model_dirs / "base") and res["generation"]["max_new_tokens"] == 4
    assert main([*common, "--model", str(model_dirs / "checkpoint"), "--label", "base"]) == 2
    assert "holds the results of" in capsys.readouterr().err

    # `eval nll` (no generation, so no --max-new-tokens) takes a label too
    assert main(["eval", "nll", f"output_dir={out}", "eval.probes.context_tokens=256", "eval.probes.num_positions=2",
                 "eval.probes.tasks=[document]", "eval.generate.dtype=float32", "--limit", "2",
                 "--model", str(model_dirs / "checkpoint"), "--label", "ckpt"]) == 0
    nll = json.loads((out / "eval" / "ckpt" / "nll" / "results.json").read_text())
    assert nll["model"] == str(model_dirs / "checkpoint") and nll["n_scored"] == 2
    assert json.loads((out / "eval" / "ckpt" / "model.json").read_text())["model"] == str((model_dirs / "checkpoint").resolve())
