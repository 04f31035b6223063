"""The eval stage end to end through the real CLI on tiny models: probes + needle on a checkpoint and
a base model, the report, then a re-run that loads no model and leaves every output byte-identical;
a generation error on one item leaves the rest scored and is counted and listed."""

from __future__ import annotations

import json

from longcurate.cli import main


def _args(tmp_path, model_dirs, *extra):
    return ["eval", "run", f"output_dir={tmp_path / 'run'}", f"model={model_dirs / 'base'}",
            f"eval.checkpoint={model_dirs / 'checkpoint'}", "eval.probes.context_tokens=512",
            "eval.probes.num_positions=3", "eval.probes.num_sets=1", "eval.probes.span=2",
            "eval.needle.lengths=[96,192]", "eval.needle.depths=[0,100]", "eval.generate.max_new_tokens=4",
            "eval.generate.dtype=float32", "eval.generate.batch_size=4", "eval.generate.device=cpu", *extra]


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stage_end_to_end_and_resume(tmp_path, model_dirs, monkeypatch):
    assert main(_args(tmp_path, model_dirs)) == 0
    ev = tmp_path / "run" / "eval"
    for label in ("checkpoint", "base"):
        res = json.loads((ev / label / "probes" / "results.json").read_text())
        assert set(res["tasks"]) == {"document", "code", "database"}
        assert res["n_failed"] == 0 and res["n_scored"] == res["n_items"] > 0
        preds = [json.loads(x) for x in (ev / label / "probes" / "predictions.jsonl").read_text().splitlines()]
        assert len(preds) == res["n_items"] and len({p["id"] for p in preds}) == len(preds)
        needle = json.loads((ev / label / "needle" / "results.json").read_text())
        assert needle["lengths"] == [96, 192] and needle["depths"] == [0.0, 100.0]
    text = (ev / "report.md").read_text()
    assert "| checkpoint |" in text and "| base |" in text
    manifest = json.loads((tmp_path / "run" / "eval.manifest.json").read_text())  # the stage's one manifest
    assert manifest["stage"] == "eval" and set(manifest["stats"]["models"]) == {"checkpoint", "base"}
    assert manifest["stats"]["report"] == str(ev / "report.md")
    assert (ev / "plots" / "probe_document.png").exists() and (ev / "plots" / "needle_checkpoint.png").exists()

    before = _snapshot(ev)

    def no_load(*a, **k):
        raise AssertionError("a finished eval must not load a model")

    monkeypatch.setattr("longcurate.core.models.load_model", no_load)
    assert main(_args(tmp_path, model_dirs)) == 0
    assert _snapshot(ev) == before


def test_interrupted_predictions_resume_without_duplicates(tmp_path, model_dirs):
    assert main(_args(tmp_path, model_dirs, "eval.models=[base]", "eval.run=[probes]")) == 0
    pred = tmp_path / "run" / "eval" / "base" / "probes" / "predictions.jsonl"
    full = pred.read_bytes()
    lines = full.splitlines(keepends=True)
    pred.write_bytes(b"".join(lines[:2]) + lines[2][:10])  # killed mid-write: no completion marker yet
    pred.with_name(pred.name + ".done").unlink()
    assert main(_args(tmp_path, model_dirs, "eval.models=[base]", "eval.run=[probes]")) == 0
    assert pred.read_bytes() == full


def test_generation_error_on_one_item(tmp_path, model_dirs, tokenizer):
    """One prompt over the context limit: it fails alone, the rest are scored, the failure is listed."""
    from longcurate.core.jsonl import read_jsonl
    from longcurate.core.models import load_model
    from longcurate.eval.hf_backend import HFModel
    from longcurate.eval.items import ensure_probes
    from longcurate.eval.retrieval import run_probes
    from longcurate.config import RunConfig
    from longcurate.core.config import apply_overrides, build

    cfg = build(RunConfig, apply_overrides({}, _args(tmp_path, model_dirs)[2:]))
    items = [o for _, o in read_jsonl(ensure_probes(cfg))]
    items[1] = {**items[1], "context": items[1]["context"] * 3}  # now ~3x too long
    gen = HFModel(load_model(str(model_dirs / "base"), dtype="float32", device="cpu"), tokenizer,
                  max_context=1000, progress=False)
    out = tmp_path / "res"
    res = run_probes(gen, items, out / "predictions.jsonl", out / "results.json", model="base", span=1, max_new_tokens=4)
    assert res["n_failed"] == 1 and res["n_scored"] == len(items) - 1
    assert res["failures"][0]["id"] == items[1]["id"] and "prompt too long" in res["failures"][0]["error"]
    assert sum(t["n"] for t in res["tasks"].values()) == len(items) - 1
    preds = [json.loads(x)["id"] for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert items[1]["id"] not in preds  # not stored: the next run retries it


def test_missing_checkpoint_is_skipped(tmp_path, model_dirs):
    from longcurate.config import RunConfig
    from longcurate.core.config import apply_overrides, build
    from longcurate.eval.stage import resolve_models

    args = _args(tmp_path, model_dirs)[2:]
    cfg = build(RunConfig, apply_overrides({}, args + [f"eval.checkpoint={tmp_path / 'none'}"]))
    assert [lab for lab, _ in resolve_models(cfg)] == ["base"]
    cfg = build(RunConfig, apply_overrides({}, args))
    assert [lab for lab, _ in resolve_models(cfg)] == ["checkpoint", "base"]
    # no eval.checkpoint: the layout's trained model, <output_dir>/checkpoint
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint" / "config.json").write_text("{}")
    cfg = build(RunConfig, apply_overrides({}, [a for a in args if not a.startswith("eval.checkpoint=")]))
    assert resolve_models(cfg)[0] == ("checkpoint", str(tmp_path / "run" / "checkpoint"))


def test_build_cli(tmp_path, model_dirs, capsys):
    out = tmp_path / "p.jsonl"
    argv = ["eval", "build", "--only", "probes", "--length", "300", "--tasks", "database",
            "--model", str(model_dirs / "base"), "--output", str(out)]
    assert main([*argv, "--positions", "2"]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["position_id"] for x in lines] == [0, 1] and {x["task"] for x in lines} == {"database"}
    assert "probes: 2 items" in capsys.readouterr().out
    marker = json.loads(out.with_name("p.jsonl.done").read_text())
    assert marker["items"] == 2 and marker["params"]["format"] == 3 and marker["params"]["num_positions"] == 2
    # the holdout part read is a setting: the bundled corpus is partitioned by default
    assert marker["params"]["holdout"] == {"fraction": 0.2, "salt": "longcurate-holdout-v1"}
    assert not (tmp_path / "needle.jsonl").exists()  # --only probes
    assert main([*argv, "--positions", "3"]) == 0  # other settings: rebuilt (policy redo)
    assert [json.loads(x)["position_id"] for x in out.read_text().splitlines()] == [0, 1, 2]
    assert main(["eval", "build", "--length", "10", "--model", str(model_dirs / "base"),
                 "--output", str(tmp_path / "bad.jsonl")]) == 2
    assert "need context_tokens >= 64" in capsys.readouterr().err


def test_build_cli_builds_both_item_files(tmp_path, model_dirs, capsys):
    assert main(["eval", "build", "--length", "300", "--positions", "2", "--tasks", "database", "--model",
                 str(model_dirs / "base"), f"output_dir={tmp_path}", "eval.needle.lengths=[96]",
                 "eval.needle.depths=[0,100]"]) == 0
    out = capsys.readouterr().out
    assert f"probes: 2 items -> {tmp_path / 'eval' / 'probes.jsonl'}" in out
    assert f"needle: 2 items -> {tmp_path / 'eval' / 'needle.jsonl'}" in out
    needles = [json.loads(x) for x in (tmp_path / "eval" / "needle.jsonl").read_text().splitlines()]
    assert [(x["length"], x["depth"]) for x in needles] == [(96, 0.0), (96, 100.0)]


def test_bad_item_lines_are_quarantined(tmp_path):
    from longcurate.eval.probes import Probe
    from longcurate.eval.retrieval import check_needle, load_items

    good = {"id": "code-s0-p0", "task": "code", "set_id": 0, "position_id": 0, "num_positions": 1, "key": "x = 1",
            "answer": "f", "context": "def f():\n    x = 1", "instruction": "?", "key_char": 13, "answer_char": 4,
            "key_token": 3, "key_token_fraction": 0.5, "context_tokens": 6}
    path = tmp_path / "probes.jsonl"
    path.write_text("\n".join([json.dumps(good), "{not json", json.dumps({k: v for k, v in good.items() if k != "key"}),
                               json.dumps({**good, "id": "x", "task": "poetry"}), json.dumps({**good, "id": "g2"})]) + "\n")
    items, rejects = load_items(path, Probe.from_dict, rejects_path=tmp_path / "bad.jsonl")
    assert [it["id"] for it in items] == ["code-s0-p0", "g2"]
    assert rejects.total == 3
    bad = [json.loads(x) for x in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert [b["line"] for b in bad] == [2, 3, 4]
    assert bad[1]["field"] == "key" and bad[2]["field"] == "task"
    assert all(b["file"] == str(path) for b in bad)
    needle_path = tmp_path / "needle.jsonl"
    needle_path.write_text(json.dumps({"id": "n", "length": 1, "depth": 0, "context": "c", "question": "q",
                                       "key_words": []}) + "\n")
    items, rejects = load_items(needle_path, check_needle, rejects_path=tmp_path / "nbad.jsonl")
    assert items == [] and rejects.total == 1
    (bad,) = [json.loads(x) for x in (tmp_path / "nbad.jsonl").read_text().splitlines()]
    assert bad["field"] == "key_words" and "must be a non-empty list" in bad["reason"]


def test_changed_prompts_or_settings_are_redone(tmp_path, tiny_model, tokenizer):
    from longcurate.eval.hf_backend import HFModel
    from longcurate.eval.retrieval import run_needle

    items = [{"id": f"n{i}", "length": 64, "depth": 0.0, "context": f"Some haystack {i}. The code is blue.",
              "question": "What is the code?", "key_words": ["blue"]} for i in range(3)]
    gen = HFModel(tiny_model, tokenizer, progress=False)
    meta = {"generation": {"template": "chat"}}
    pred, results = tmp_path / "predictions.jsonl", tmp_path / "results.json"
    run_needle(gen, items, pred, results, model="m", max_new_tokens=3, meta=meta)
    first = pred.read_text()
    items[1] = {**items[1], "context": "A different haystack. The code is blue."}
    res = run_needle(gen, items, pred, results, model="m", max_new_tokens=3, meta=meta)
    lines = [json.loads(x) for x in pred.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["n0", "n2", "n1"] and res["n_scored"] == 3
    assert first.splitlines()[0] == pred.read_text().splitlines()[0]  # n0 kept as it was
    run_needle(gen, items, pred, results, model="m", max_new_tokens=3, meta={"generation": {"template": "film"}})
    assert [json.loads(x)["id"] for x in pred.read_text().splitlines()] == ["n0", "n1", "n2"]  # all redone


def test_predictions_of_items_not_asked_about_are_kept(tmp_path, tiny_model, tokenizer):
    """A smaller item set (e.g. a lower eval.limit) reuses what it can and deletes nothing."""
    from longcurate.eval.hf_backend import HFModel
    from longcurate.eval.retrieval import run_needle

    items = [{"id": f"n{i}", "length": 64, "depth": 0.0, "context": f"Haystack {i}. The code is red.",
              "question": "What is the code?", "key_words": ["red"]} for i in range(3)]
    gen = HFModel(tiny_model, tokenizer, progress=False)
    pred, results = tmp_path / "predictions.jsonl", tmp_path / "results.json"
    run_needle(gen, items, pred, results, model="m", max_new_tokens=3)
    full = pred.read_bytes()

    class NoGeneration:
        def generate(self, requests):
            raise AssertionError(f"nothing is left to generate, got {[r.id for r in requests]}")

    res = run_needle(NoGeneration(), items[:2], pred, results, model="m", max_new_tokens=3)
    assert res["n_scored"] == 2 and pred.read_bytes() == full


def test_single_commands_and_report_cli(tmp_path, model_dirs, capsys):
    common = [f"--output-dir={tmp_path / 'ev'}", "--max-new-tokens", "3", "eval.probes.context_tokens=512",
              "eval.probes.num_positions=3", "eval.probes.tasks=[database]", "eval.needle.lengths=[96]",
              "eval.needle.depths=[50]", "eval.generate.dtype=float32", "eval.generate.device=cpu"]
    for label in ("base", "checkpoint"):
        model = str(model_dirs / label)
        assert main(["eval", "probes", "--model", model, "--label", label, *common]) == 0
        assert main(["eval", "needle", "--model", model, "--label", label, *common]) == 0
    out = capsys.readouterr().out
    assert "probes on" in out and "needle on" in out
    assert main(["eval", "report", str(tmp_path / "ev" / "base"), str(tmp_path / "ev" / "checkpoint"),
                 "--labels", "base,trained"]) == 0
    text = (tmp_path / "ev" / "report.md").read_text()
    assert "| trained |" in text and "| model | database | all items | items (failed) |" in text
    assert "document" not in text
    assert main(["eval", "report", str(tmp_path / "ev" / "base"), "--labels", "a,b"]) == 2


def test_stage_loads_the_tokenizer_once_for_both_item_files(tmp_path, model_dirs, monkeypatch):
    from longcurate.config import RunConfig
    from longcurate.core.config import apply_overrides, build
    from longcurate.eval import items, stage

    loads = []
    real = items.item_tokenizer
    monkeypatch.setattr(items, "item_tokenizer", lambda cfg: loads.append(cfg.model) or real(cfg))
    monkeypatch.setattr(stage, "evaluate_model", lambda *a, **k: {})
    monkeypatch.setattr(stage, "write_comparison", lambda *a, **k: None)
    cfg = build(RunConfig, apply_overrides({}, _args(tmp_path, model_dirs)[2:]))
    stage.run_stage(cfg)
    assert len(loads) == 1 and (tmp_path / "run" / "eval" / "probes.jsonl").exists()
    assert (tmp_path / "run" / "eval" / "needle.jsonl").exists()
    stage.run_stage(cfg)  # both built already: no tokenizer at all
    assert len(loads) == 1
