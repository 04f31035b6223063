"""Run folders: every arm and seed trains on the same short data (per seed) with the same steps and base
model, and evaluates on the same items; only the long samples differ. No model is needed: the
mixtures are built (train's own `run_mix`) and the eval steps' settings compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longcurate.ablate.arms import write_arms
from longcurate.ablate.runs import check_pool_config, plan_runs
from longcurate.config import RunConfig
from longcurate.core.config import build
from longcurate.core.errors import UserError
from longcurate.core.jsonl import read_jsonl
from longcurate.eval.items import probes_step
from longcurate.eval.nll import nll_step
from longcurate.train.stage import fit_spec, run_mix, run_tokenize

ROOT = Path(__file__).resolve().parents[2]
ARMS = ["gateau", "random", "length", "full", "short-only"]


def config(tmp_path: Path, **mix) -> RunConfig:
    return build(RunConfig, {
        "output_dir": str(tmp_path), "model": "some-base-model", "seed": 7,
        "train": {"mix": {"short": str(ROOT / "data/short_chat_demo.jsonl"), **mix}, "max_steps": 5,
                  "grad_accum": 2, "init_from": "the-base"},
        "eval": {"models": ["checkpoint", "base"], "run": ["probes", "needle"]},
        "ablate": {"arms": ARMS, "seeds": [0, 1], "budget": 6, "measures": ["nll"], "subsets": 2}})


def mixture(cfg: RunConfig) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"long": [], "short": []}
    for _, r in read_jsonl(cfg.layout().mixture):
        out[r["source"]].append(json.dumps([r["id"], r["messages"]]))
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.parametrize("mix", [{"short_size": 10}, {"short_ratio": 1.5}])
def test_every_arm_has_the_same_short_data_steps_base_and_eval_items(tmp_path, fake_pool, mix):
    fake_pool(tmp_path)
    cfg = config(tmp_path, **mix)
    ab = cfg.layout().ablation(cfg.ablate.output)
    runs = plan_runs(cfg, ab, write_arms(cfg, ab))
    draws = {"random": [0, 1]}
    assert [(r.arm, r.subset, r.seed) for r in runs] == [(a, k, s) for a in ARMS for k in draws.get(a, [None])
                                                         for s in (0, 1)] + [("base", None, None)]
    short: dict[int, list[str]] = {}
    for run in runs[:-1]:
        t = run.train_cfg
        assert t.layout().root == ab.run(run.arm, run.seed, run.subset) and t.seed == run.seed
        assert (t.train.max_steps, t.train.grad_accum, t.train.init_from) == (5, 2, "the-base")
        assert t.train.mix.long == [str(ab.arm_file(run.arm, run.subset))] and t.train.mix.short_ratio is None
        run_mix(t, progress=False)
        m = mixture(t)
        assert len(m["short"]) == (9 if "short_ratio" in mix else 10)  # ratio: 1.5 x the random arm's 6 samples
        assert short.setdefault(run.seed, m["short"]) == m["short"], (run.arm, run.seed)
        assert len(m["long"]) == {"full": 20, "short-only": 0}.get(run.arm, 6)
    assert short[0] != short[1]  # the seed draws the short samples; every arm of a seed has the same

    evals = [r.eval_cfg for r in runs]
    assert all(e.eval.run == ["nll"] and e.seed == cfg.seed for e in evals)
    # The base row is the model every arm starts from: here train.init_from, not the run's `model`.
    assert [e.eval.models for e in evals] == [["checkpoint"]] * (len(runs) - 1) + [["the-base"]]
    assert runs[-1].eval_dir == ab.base_run / "eval" / "the-base"
    assert {e.layout().probes for e in evals} == {ab.probes}
    assert {e.layout().heldout for e in evals} == {cfg.layout().heldout}  # the pool's held-out samples
    assert len({json.dumps(probes_step(e).settings) for e in evals}) == 1  # built once, reused by every run
    nll = {json.dumps({k: v for k, v in nll_step(e, "x", "m").settings.items()}) for e in evals}
    assert len(nll) == 1  # the same items, template and dtype for every model


def test_fit_settings_differ_only_by_data_and_seed(tmp_path, fake_pool, tokenizer):
    """What decides each trained model (train's fit step): only the tokenized data and the seed vary."""
    fake_pool(tmp_path)
    cfg = config(tmp_path, short_size=4)
    ab = cfg.layout().ablation(cfg.ablate.output)
    settings = []
    for run in plan_runs(cfg, ab, write_arms(cfg, ab))[:-1]:
        run_mix(run.train_cfg, progress=False)
        run_tokenize(run.train_cfg, tokenizer=tokenizer, progress=False)
        settings.append(fit_spec(run.train_cfg).settings)
    rest = {json.dumps({k: v for k, v in s.items() if k not in ("dataset_sha256", "seed")}) for s in settings}
    assert len(rest) == 1 and json.loads(rest.pop())["base_model"] == "the-base"
    assert len({(s["dataset_sha256"], s["seed"]) for s in settings}) == len(settings)


def test_a_fair_comparison_needs_fixed_steps_and_short_data(tmp_path):
    with pytest.raises(UserError, match="max_steps"):
        check_pool_config(build(RunConfig, {"train": {"max_steps": -1}}))
    with pytest.raises(UserError, match="short-only"):
        check_pool_config(build(RunConfig, {"train": {"max_steps": 3}}))
    check_pool_config(build(RunConfig, {"train": {"max_steps": 3}, "ablate": {"arms": ["gateau", "random"]}}))
    # a token budget may train by epochs: each arm's model on its own file, as it is
    check_pool_config(build(RunConfig, {"train": {"max_steps": -1}, "ablate": {
        "arms": ["gateau", "random"], "budget_unit": "response_tokens", "budget": 300}}))


def test_a_run_folder_writes_only_in_its_folder_whatever_the_pool_placed_elsewhere(tmp_path):
    """`RunConfig.moved_to` clears every key that places a file elsewhere (`PLACED_PATHS`): a pool config
    that sets all of them still gives run folders whose every path is inside the folder, except the
    eval items every run shares."""
    from dataclasses import fields

    from longcurate.ablate.runs import run_folder_config
    from longcurate.core.config import set_path, to_dict

    data = to_dict(config(tmp_path, short_size=4))
    for key in RunConfig.PLACED_PATHS:
        set_path(data, key, str(tmp_path / "elsewhere" / key))
    cfg = build(RunConfig, data)
    paths = [f.name for f in fields(cfg.layout()) if isinstance(getattr(cfg.layout(), f.name), Path)]
    assert all(str(getattr(cfg.layout(), p)).startswith(str(tmp_path / "elsewhere"))
               for p in paths if p not in ("root", "eval_dir"))  # every key took effect
    ab = cfg.layout().ablation(str(tmp_path / "ablation"))
    folder = ab.run("gateau", 0)
    run = run_folder_config(cfg, folder, ab, ["checkpoint"])
    shared = {"heldout": cfg.layout().heldout, "probes": ab.probes, "needle": ab.needle}
    for name in paths:
        path = getattr(run.layout(), name)
        assert path == shared[name] if name in shared else folder in (path, *path.parents), name
    assert run.eval.checkpoint is None and run.select.input is None and run.train.dataset is None


@pytest.mark.parametrize("keep", [False, True])
def test_a_finished_runs_trainer_checkpoints_are_removed_unless_kept(tmp_path, keep):
    """They only serve a resume, which a finished model never makes: removed once the model's marker is
    written (not before: a run killed mid-training resumes from them), kept with `keep_checkpoints`."""
    from longcurate.ablate.runs import remove_trainer_checkpoints
    from longcurate.core.config import set_path, to_dict
    from longcurate.core.runner import StepSpec, run_step

    data = to_dict(config(tmp_path, short_size=4))
    set_path(data, "ablate.keep_checkpoints", keep)
    cfg = build(RunConfig, data)
    layout = cfg.layout()
    ckpt = layout.checkpoints / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"x" * 1000)
    assert remove_trainer_checkpoints(cfg) == 0 and ckpt.exists()  # no finished model yet

    def write_model(run):
        run.output.mkdir(parents=True)
        (run.output / "model.safetensors").write_bytes(b"y" * 10)
        return {"steps": 2}

    run_step(StepSpec("train fit", layout.model, {"seed": 7}), write_model)
    if keep:  # execute() calls remove_trainer_checkpoints only when they are not kept
        assert cfg.ablate.keep_checkpoints and ckpt.exists()
        return
    assert remove_trainer_checkpoints(cfg) == 1000
    assert not layout.checkpoints.exists() and (layout.model / "model.safetensors").exists()
    assert remove_trainer_checkpoints(cfg) == 0
