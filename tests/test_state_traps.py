"""State traps (issue 23, item 4), each reproduced and shown gone: what an earlier command left behind
must not stop, mislead or clutter the next one.

- Every resumable step (synth's samples and held-out samples, a score file's shards, the trained
  model) whose run stopped before writing a record may be rerun with other settings; once it holds a
  record, other settings are still refused. The list of resumable steps is read from the source, so
  a new one cannot be left out.
- An explicit `--output` writes nothing elsewhere: `synth run --output X` and `train fit --output X`
  leave no `runs/default/`; what goes with the output (manifest, checkpoints, held-out samples,
  caches) lies beside it.
- Budgets larger than the pool: one file per method, named by its real size, with one warning (not
  21 files named `-1000 / -3000 / -5000`, each holding all 26 samples).

The eval traps (items reused, item sets compared, one results layout) are in
`tests/eval/test_state_traps.py`.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.config import RunConfig
from longcurate.core.config import build
from longcurate.core.errors import SettingsChanged, UserError
from longcurate.core.runner import StepRun, run_step

ROOT = Path(__file__).resolve().parents[1]


# --- a step that wrote no record binds nobody ---------------------------------------------------

def _tokenized(folder: Path) -> None:
    from datasets import Dataset

    Dataset.from_dict({"id": ["a", "b"], "input_ids": [[5, 6, 7], [8, 9]], "labels": [[-100, 6, 7], [-100, 9]],
                       "length": [3, 2], "n_response_tokens": [2, 1], "source": ["long", "long"]}
                      ).save_to_disk(str(folder))


def _synth_samples(cfg):
    from longcurate.synth.streams import stream_spec, training_stream

    return stream_spec(cfg, training_stream(cfg))


def _synth_heldout(cfg):
    from longcurate.synth.streams import heldout_stream, stream_spec

    return stream_spec(cfg, heldout_stream(cfg))


def _score_shard(cfg):
    from longcurate.select.steps import ScoreSteps

    return ScoreSteps.of(cfg, "hmg").part(0, 1)


def _train_fit(cfg):
    from longcurate.train.stage import fit_spec

    return fit_spec(cfg)


# step -> (its spec from a config, the setting changed between the two runs)
RESUMABLE = {
    "synth samples": (_synth_samples, "synth.min_tokens"),
    "synth held-out samples": (_synth_heldout, "synth.min_tokens"),
    "a score file's shard": (_score_shard, "select.window"),
    "the trained model": (_train_fit, "train.learning_rate"),
}
CHANGED = {"synth.min_tokens": (1024, 2048), "select.window": (256, 512), "train.learning_rate": (1e-5, 3e-5)}


def _config(root: Path, key: str, value) -> RunConfig:
    section, name = key.split(".")
    select = {"input": str(root / "in.jsonl")} if section == "select" else {}
    return build(RunConfig, {"output_dir": str(root), "synth": {"heldout_samples": 3},
                             section: {name: value, **select}})


def _write_one(run: StepRun) -> dict:
    """The work of a run that gets as far as one record."""
    if run.output.suffix == ".jsonl":
        run.output.parent.mkdir(parents=True, exist_ok=True)
        run.output.write_text(json.dumps({"id": "r1"}) + "\n")
    else:
        run.output.mkdir(parents=True, exist_ok=True)
        (run.output / "config.json").write_text("{}")
    return {"num_samples": 1}


def _stops_before_any_record(run: StepRun) -> dict:
    raise UserError("no column 'text' in any record")  # the bad text_field of issue 23


@pytest.mark.parametrize("step", list(RESUMABLE))
def test_a_resumable_step_that_wrote_nothing_may_be_rerun_with_other_settings(step, tmp_path):
    spec_of, key = RESUMABLE[step]
    first, second = CHANGED[key]
    root = tmp_path / "run"
    root.mkdir()
    (root / "in.jsonl").write_text(json.dumps({"id": "s"}) + "\n")  # what select scores
    _tokenized(root / "mixture" / "tokenized")
    a, b = spec_of(_config(root, key, first)), spec_of(_config(root, key, second))
    assert a.resumable and a.on_change == "refuse" and a.settings != b.settings
    with pytest.raises(UserError, match="no column"):
        run_step(a, _stops_before_any_record)
    begun = a.begun_at or a.output.with_name(a.output.name + ".settings.json")
    assert begun.exists() and not a.output.exists()  # the first run's settings were recorded ...
    stats = run_step(b, _write_one)  # ... and do not refuse the corrected rerun
    assert stats["num_samples"] == 1 and json.loads(begun.read_text()) == json.loads(json.dumps(b.settings))
    with pytest.raises(SettingsChanged, match="other settings"):  # a step that holds a record still refuses
        run_step(a, _write_one)


def test_every_resumable_step_is_tested_above():
    """Each `resumable=` StepSpec in the package is one of the steps the test above runs."""
    found = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "longcurate").rglob("*.py")
                   if re.search(r"\bresumable\s*=", p.read_text()) and p.name != "runner.py")
    assert found == ["longcurate/select/steps.py", "longcurate/synth/streams.py", "longcurate/train/stage.py"]
    assert len(RESUMABLE) == 4  # the two synth streams, the shards, the model


# --- an explicit --output writes nothing elsewhere ----------------------------------------------

def test_synth_run_with_an_explicit_output_writes_nothing_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "mine" / "s.jsonl"
    argv = ["synth", "run", "--num-samples", "2", "--min-tokens", "256", "--max-tokens", "384", "--output", str(out),
            "--heldout-samples", "1", "synth.corpus.limit=400", "synth.multihop_fraction=0"]
    assert main(argv) == 0
    assert not (tmp_path / "runs").exists()
    names = sorted(p.name for p in out.parent.iterdir())
    assert {"s.jsonl", "s.jsonl.done", "s.heldout.jsonl", "s.heldout.jsonl.done", "synth.manifest.json"} <= set(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_train_fit_with_an_explicit_output_writes_nothing_elsewhere(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, model = tmp_path / "data" / "tokenized", tmp_path / "models" / "m1"
    _tokenized(data)
    argv = ["train", "fit", "--dataset", str(data), "--model", str(tiny_model_dir), "--output", str(model),
            "--max-steps", "1", "train.gradient_checkpointing=false", "train.precision=fp32", "train.save_steps=1"]
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "models"]  # no runs/default/
    assert (model / "config.json").exists() and model.with_name("m1.done").exists()
    checkpoints = model.with_name("m1.train")  # the Trainer's checkpoints, beside the model
    assert checkpoints.is_dir() and model.with_name("m1.train.settings.json").exists()


def test_a_run_folder_keeps_everything_in_it():
    """With an output_dir, the layout is the one documented, even for a placed output."""
    cfg = build(RunConfig, {"output_dir": "runs/x", "synth": {"output": "elsewhere/s.jsonl"}})
    layout = cfg.layout()
    assert layout.heldout == Path("runs/x/heldout.jsonl") and layout.manifest("synth") == Path("runs/x/synth.manifest.json")
    assert RunConfig().layout().root == Path("runs/default")


# --- budgets larger than the pool ---------------------------------------------------------------

def _pool(root: Path, n: int) -> tuple[Path, Path]:
    samples, ranked = root / "samples.jsonl", root / "select" / "ranked.jsonl"
    ranked.parent.mkdir(parents=True)
    rows, scores = [], []
    for i in range(n):
        ctx, q, a = f"Record {i} is stored here. " * (i + 1), f"What is stored for record {i}?", f"Record {i}."
        rows.append({"id": f"s{i:02d}", "context": ctx, "instruction": q, "response": a,
                     "messages": [{"role": "user", "content": f"{ctx}\n\n{q}"}, {"role": "assistant", "content": a}]})
        scores.append({"id": f"s{i:02d}", "rank": i + 1, "score": 1 - i / n, "hmg": (i * 7 % n) / n,
                       "cas": (i * 5 % n) / n, "ifd": 0.5, "perplexity": 1.0 + i, "n_tokens": 10 + i})
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ranked.write_text("".join(json.dumps(r) + "\n" for r in scores))
    return samples, ranked


def test_budgets_larger_than_the_pool_make_one_file_named_by_its_size(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "longcurate.select")
    root = tmp_path / "run"
    _pool(root, 26)
    assert main(["select", "budget", f"output_dir={root}"]) == 0  # the default budgets: 1000 3000 5000
    files = sorted(p.name for p in (root / "budgets").glob("*-*.jsonl"))
    methods = ["cam-only", "gateau", "hmg-only", "ifd", "length", "perplexity", "random"]
    assert files == [f"{m}-26.jsonl" for m in methods]  # 7 files, not 21
    assert all(len((root / "budgets" / f).read_text().splitlines()) == 26 for f in files)
    index = [json.loads(x) for x in (root / "budgets" / "budgets.jsonl").read_text().splitlines()]
    assert sorted(r["file"] for r in index) == files
    (warning,) = [r.getMessage() for r in caplog.records if "larger than" in r.getMessage()]
    assert "1000, 3000, 5000: larger than the 26 ranked samples" in warning and "<method>-26.jsonl" in warning
    # a budget within the pool keeps its name beside the capped one
    assert main(["select", "budget", "10", "1000", f"output_dir={root}", "select.baselines=[random]"]) == 0
    assert sorted(p.name for p in (root / "budgets").glob("*-*.jsonl")) == \
        ["gateau-10.jsonl", "gateau-26.jsonl", "random-10.jsonl", "random-26.jsonl"]
    cfg = build(RunConfig, {"output_dir": str(root)})
    assert cfg.layout().top_budget("gateau").name == "gateau-26.jsonl"  # what train mixes by default
