"""The eval state traps of issue 23, each reproduced and shown gone:

- the items `eval build` made are what `eval probes` / `eval needle` evaluate on, not replaced by items
  of the command's default settings (only `eval build` and `eval run` build items to their settings);
- `eval report` never puts figures computed on different item sets side by side silently (12 items
  beside 3): the section says so, and so does the command;
- LongBench scores made from predictions (`eval longbench --score-only DIR --label L`) land in the
  same layout as every other result, `<eval dir>/<label>/longbench/pred/result.json`, and `eval report`
  finds them there.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from longcurate.cli import main

GEN = ["eval.generate.dtype=float32", "eval.generate.device=cpu", "eval.generate.max_new_tokens=3",
       "eval.nll.heldout=false"]
BUILD = ["eval.probes.context_tokens=256", "eval.probes.num_positions=3", "eval.probes.tasks=[database]",
         "eval.needle.lengths=[96]", "eval.needle.depths=[25,75]"]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_items_built_by_eval_build_are_the_ones_evaluated(tmp_path, model_dirs, caplog):
    caplog.set_level(logging.WARNING, "longcurate.eval")
    base = str(model_dirs / "base")
    run = [f"output_dir={tmp_path}", f"model={base}"]
    assert main(["eval", "build", *run, *BUILD]) == 0
    evals = tmp_path / "eval"
    built = {name: (evals / name).read_bytes() for name in ("probes.jsonl", "probes.jsonl.done", "needle.jsonl",
                                                             "needle.jsonl.done")}
    assert len(lines(evals / "probes.jsonl")) == 3 and len(lines(evals / "needle.jsonl")) == 2
    # the commands that evaluate run with their defaults (2048-token probes of three tasks, other needles)
    assert main(["eval", "probes", "--model", base, *run, *GEN]) == 0
    assert main(["eval", "needle", "--model", base, *run, *GEN]) == 0
    assert {name: (evals / name).read_bytes() for name in built} == built  # not rebuilt, not replaced
    assert len(lines(evals / "base" / "probes" / "predictions.jsonl")) == 3
    assert len(lines(evals / "base" / "needle" / "predictions.jsonl")) == 2
    said = [r.getMessage() for r in caplog.records if "was built with other settings" in r.getMessage()]
    assert len(said) == 2 and "context_tokens: 256 -> 2048" in said[0] and "lengths: [96] ->" in said[1]
    assert all("`longcurate eval build` with these settings rebuilds it" in s for s in said)
    # eval build itself builds to its settings
    assert main(["eval", "build", "--only", "probes", *run, *BUILD[:3], "eval.probes.tasks=[document]"]) == 0
    assert {it["task"] for it in lines(evals / "probes.jsonl")} == {"document"}


def test_the_report_marks_figures_made_on_different_item_sets(tmp_path, model_dirs, capsys, caplog):
    caplog.set_level(logging.WARNING, "longcurate.eval")
    run = [f"output_dir={tmp_path}", *BUILD, *GEN]
    assert main(["eval", "probes", "--model", str(model_dirs / "base"), *run]) == 0
    assert main(["eval", "probes", "--model", str(model_dirs / "checkpoint"), "--limit", "1", *run]) == 0
    evals = tmp_path / "eval"
    assert main(["eval", "report", f"output_dir={tmp_path}"]) == 0  # every model folder of the run's eval folder
    report = (evals / "report.md").read_text()
    assert "**base** (" in report and "**checkpoint** (" in report
    assert ("**Not comparable.** probes: the models were measured on different item sets (base 3 items, "
            "checkpoint 1 items;") in report
    section = report.split("## VaL-style probes", 1)[1]
    assert section.index("Not comparable") < section.index("| model |")  # above the table it qualifies
    assert any("different item sets" in r.getMessage() for r in caplog.records)
    # the same items: no mark
    assert main(["eval", "probes", "--model", str(model_dirs / "checkpoint"), *run]) == 0
    caplog.clear()
    assert main(["eval", "report", str(evals / "base"), str(evals / "checkpoint")]) == 0
    assert "Not comparable" not in (evals / "report.md").read_text()
    assert not any("different item sets" in r.getMessage() for r in caplog.records)
    capsys.readouterr()


def test_scores_of_given_predictions_live_in_the_one_layout(tmp_path, model_dirs, capsys):
    run = [f"output_dir={tmp_path}", *BUILD, *GEN]
    assert main(["eval", "probes", "--model", str(model_dirs / "base"), *run]) == 0
    preds = tmp_path / "downloaded" / "pred"
    preds.mkdir(parents=True)
    (preds / "trec.jsonl").write_text(json.dumps({"pred": "Location", "answers": ["Location"], "length": 10,
                                                  "all_classes": ["Location", "Human"]}) + "\n")
    assert main(["eval", "longbench", "--score-only", str(preds), "--label", "theirs", f"output_dir={tmp_path}"]) == 0
    result = tmp_path / "eval" / "theirs" / "longbench" / "pred" / "result.json"
    assert json.loads(result.read_text())["scores"] == {"trec": 100.0}
    assert json.loads(result.read_text())["pred_dir"] == str(preds)  # read where they are
    assert not (preds / "result.json").exists()  # nothing written beside the predictions
    assert json.loads((tmp_path / "eval" / "theirs" / "model.json").read_text())["model"] == str(preds.resolve())
    assert main(["eval", "report", f"output_dir={tmp_path}"]) == 0
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "## LongBench" in report and "| theirs | 100.0<br>" in report and "**base** (" in report
    # the label may not be another model's
    assert main(["eval", "longbench", "--score-only", str(preds), "--label", "base", f"output_dir={tmp_path}"]) == 2
    assert "holds the results of" in capsys.readouterr().err


def test_item_sets_compare_counts_and_item_files():
    from longcurate.eval.results import ModelResults, differing_items, item_count, same_items

    lb = {"counts": {"hotpotqa": {"scored": 19, "failed": 1}, "trec": {"scored": 20, "failed": 0}}}
    assert item_count(lb) == {"hotpotqa": 20, "trec": 20} and item_count({"n_cases": 50}) == 50
    assert same_items({"n": 12, "items": "abc"}, {"n": 12})  # an incomplete task's marker is missing: count only
    assert not same_items({"n": 12, "items": "abc"}, {"n": 12, "items": "abd"})  # another item file
    assert not same_items({"n": {"trec": 20}}, {"n": {"trec": 20, "hotpotqa": 20}})
    models = [ModelResults("a", Path("a"), item_sets={"probes": {"n": 12, "items": "x"}, "longbench": {"n": {"t": 5}}}),
              ModelResults("b", Path("b"), item_sets={"probes": {"n": 12, "items": "x"}, "longbench": {"n": {"t": 4}}})]
    assert list(differing_items(models)) == ["longbench"]
