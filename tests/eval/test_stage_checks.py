"""The eval stage's contamination check: against the run's mixture (else its samples), its line first in
the report, `eval.require_clean` stopping the stage with the items named, and no check without
training data."""

from __future__ import annotations

import json

from longcurate.cli import main
from longcurate.core.jsonl import write_jsonl


def _args(tmp_path, model_dirs, *extra):
    return ["eval", "run", f"output_dir={tmp_path / 'run'}", f"model={model_dirs / 'base'}", "eval.models=[base]",
            "eval.run=[nll]", "eval.probes.context_tokens=400", "eval.probes.num_positions=3",
            "eval.probes.tasks=[document,database]", "eval.generate.dtype=float32", "eval.generate.device=cpu", *extra]


def _training(path, texts):
    write_jsonl(path, [{"id": f"s{i}", "source": "long", "messages": [{"role": "user", "content": "Read this."},
                                                                     {"role": "assistant", "content": t}]}
                       for i, t in enumerate(texts)])


def test_stage_checks_its_items_against_the_mixture(tmp_path, model_dirs, capsys):
    run = tmp_path / "run"
    assert main(["eval", "build", "--only", "probes", *_args(tmp_path, model_dirs)[2:]]) == 0
    probes = [json.loads(x) for x in (run / "eval" / "probes.jsonl").read_text().splitlines()]
    # answers of more than two words: a one-word answer (a function name) is reported but never stops
    # the stage (test_contamination.py::test_require_clean_ignores_matches_only_by_short_texts)
    long_answers = [p for p in probes if len(p["answer"].split()) > 2]
    planted = [long_answers[0], long_answers[-1]]
    _training(run / "mixture" / "mixture.jsonl", ["Nothing to see here."] + [f"As we know, {p['answer']}" for p in planted])
    _training(run / "samples.jsonl", ["Nothing at all."])  # the mixture wins: it is what the model trained on
    assert main(_args(tmp_path, model_dirs)) == 0
    result = json.loads((run / "eval" / "contamination.json").read_text())
    assert result["train_files"] == [str(run / "mixture" / "mixture.jsonl")]
    assert sorted(it["id"] for it in result["items"] if it["exact"]) == sorted(p["id"] for p in planted)
    report = (run / "eval" / "report.md").read_text().splitlines()
    assert report[2].startswith(f"**Contamination:** 2 of {len(probes)} eval items have an answer, key or needle")
    manifest = json.loads((run / "eval.manifest.json").read_text())
    assert manifest["stats"]["contamination"] == {"exact_items": 2, "items": len(probes)}
    assert manifest["config"]["holdout"]["fraction"] == 0.2  # the split is recorded with the run

    capsys.readouterr()
    assert main(_args(tmp_path, model_dirs, "eval.require_clean=true")) == 2
    err = capsys.readouterr().err
    assert "eval.require_clean" in err and "2 eval item(s) occur in the training data" in err
    assert all(p["id"] in err for p in planted)

    _training(run / "mixture" / "mixture.jsonl", ["Nothing to see here."])  # cleaned: the check is redone
    assert main(_args(tmp_path, model_dirs, "eval.require_clean=true")) == 0
    assert json.loads((run / "eval" / "contamination.json").read_text())["exact_items"] == 0


def test_samples_when_there_is_no_mixture_and_no_check_without_training_data(tmp_path, model_dirs):
    run = tmp_path / "run"
    assert main(_args(tmp_path, model_dirs)) == 0
    assert not (run / "eval" / "contamination.json").exists()
    assert (run / "eval" / "report.md").read_text().splitlines()[2].startswith("**Contamination:** not checked")
    _training(run / "samples.jsonl", ["Nothing at all."])
    assert main(_args(tmp_path, model_dirs)) == 0
    result = json.loads((run / "eval" / "contamination.json").read_text())
    assert result["train_files"] == [str(run / "samples.jsonl")] and result["exact_items"] == 0
    assert "**Contamination:** 0 of" in (run / "eval" / "report.md").read_text()
