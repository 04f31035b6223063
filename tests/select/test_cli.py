"""The select commands end to end on a tiny model: sharded = unsharded, torchrun, SIGKILL + resume,
bad input, and the stage's re-run that redoes nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from longcurate.cli import main

from .conftest import make_samples, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
FP32 = ["select.dtype=float32", "select.device=cpu"]


def _read(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def _by_id(path):
    return {r["id"]: r for r in _read(path)}


# Min-max normalised fields divide by the dataset's PPL range, which is tiny for a random model (all
# PPLs ~ 5e4 ± 2%), so they amplify the last-bit differences between batch compositions ~1e2-fold.
_DERIVED = {"norm_ppl_a", "norm_ppl_b", "hmg"}


def _assert_same(a, b, tol=1e-6):
    assert a.keys() == b.keys()
    for i in a:
        for k, v in a[i].items():
            w = b[i][k]
            if k in _DERIVED:
                assert w == pytest.approx(v, abs=1e-4), (i, k)
                continue
            if isinstance(v, float):
                assert w == pytest.approx(v, rel=tol, abs=tol), (i, k)
            elif isinstance(v, list) and v and isinstance(v[0], float):
                assert w == pytest.approx(v, rel=tol, abs=tol), (i, k)
            else:
                assert w == v, (i, k)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "in.jsonl"
    write_jsonl(path, make_samples(8, seed=5, min_par=3, max_par=8))
    return path


def _score(kind, inp, out, model, *extra):
    args = ["select", "score", kind, "--input", str(inp), "--output", str(out), "--model", str(model), "select.window=256",
            "select.max_segments=4", "select.chunk_size=3", *FP32, *extra]
    assert main(args) == 0


def test_two_shards_equal_one(tmp_path, data, tiny_folder):
    for kind in ("hmg", "cam"):
        _score(kind, data, tmp_path / f"one/{kind}.jsonl", tiny_folder)
        for k in (0, 1):
            _score(kind, data, tmp_path / f"two/{kind}.jsonl", tiny_folder, "--num-shards", "2", "--shard-index", str(k))
        assert not (tmp_path / f"two/{kind}.jsonl").exists()  # explicit shards: merge is a separate step
        assert main(["select", "merge", "--kind", kind, "--input", str(data), "--output",
                     str(tmp_path / f"two/{kind}.jsonl"), "--num-shards", "2"]) == 0
        one, two = _by_id(tmp_path / f"one/{kind}.jsonl"), _by_id(tmp_path / f"two/{kind}.jsonl")
        assert len(one) == 8
        _assert_same(one, two)
    # rank + budget + diagnose from the CLI
    ranked = tmp_path / "one/ranked.jsonl"
    assert main(["select", "rank", "--hmg", str(tmp_path / "one/hmg.jsonl"), "--cam", str(tmp_path / "one/cam.jsonl"),
                 "--output", str(ranked)]) == 0
    assert main(["select", "budget", "2", "0.5", "--ranked", str(ranked), "--input", str(data),
                 "--out-dir", str(tmp_path / "budgets")]) == 0
    names = sorted(p.name for p in (tmp_path / "budgets").glob("*.jsonl"))
    assert "gateau-2.jsonl" in names and "random-0.5.jsonl" in names and "length-2.jsonl" in names
    assert main(["select", "diagnose", "--hmg", str(tmp_path / "one/hmg.jsonl"), "--cam",
                 str(tmp_path / "one/cam.jsonl"), "--input", str(data), f"output_dir={tmp_path / 'one'}",
                 "select.scores_dir=" + str(tmp_path / "one")]) == 0
    assert (tmp_path / "one/diagnostics.json").exists()


def _merge_recorded(data, out, count):
    """What `select merge` does: merge `count` parts under the settings the shards recorded."""
    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from longcurate.select.scoring import expected_ids, merge_scores
    from longcurate.select.steps import ScoreSteps

    cfg = build(RunConfig, {"select": {"input": str(data), "output": str(out)}})
    assert expected_ids(cfg, "hmg") == [f"s{i:03d}" for i in range(8)]
    return merge_scores(cfg, ScoreSteps.recorded(cfg, "hmg"), count)


def test_merge_detects_missing_and_duplicates(tmp_path, data, tiny_folder):
    out = tmp_path / "hmg.jsonl"
    _score("hmg", data, out, tiny_folder, "--num-shards", "2", "--shard-index", "0")
    with pytest.raises(ValueError, match="missing part files"):
        _merge_recorded(data, out, 2)
    _score("hmg", data, out, tiny_folder, "--num-shards", "2", "--shard-index", "1")
    part = tmp_path / "hmg.part-1-of-2.jsonl"
    lines = part.read_text().splitlines()
    first = json.loads(lines[0])
    part.write_text("\n".join(lines + [json.dumps({**first, "nll_a": -1.0})]) + "\n")  # an id twice, other values
    with pytest.raises(ValueError, match="more than once with different values"):
        _merge_recorded(data, out, 2)
    part.write_text("\n".join(lines[1:]) + "\n")  # an id missing
    with pytest.raises(ValueError, match="neither scored nor rejected"):
        _merge_recorded(data, out, 2)


def test_bad_input_goes_to_rejected_file(tmp_path, tiny_folder):
    recs = make_samples(6, seed=7, min_par=3, max_par=5)
    short = dict(recs[1], id="short", context="Tiny context.", gold=[])
    empty = dict(recs[2], id="empty", response="")
    long = dict(recs[3], id="long", context=recs[3]["context"] * 8, gold=[])
    dup = dict(recs[4])
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, recs + [short, empty, long, dup, "[1, 2]"])
    for kind in ("hmg", "cam"):
        out = tmp_path / f"{kind}.jsonl"
        _score(kind, inp, out, tiny_folder, "select.max_length=1200")
        rej = {r["id"] or f"line{r['line']}": r["reason"] for r in _read(tmp_path / f"{kind}.rejected.jsonl")}
        assert rej["empty"].startswith("empty response")
        assert rej["long"].startswith("too long")
        assert rej["s004"].startswith("duplicate id")
        assert rej["line11"] == "not a JSON object"
        scored = set(_by_id(out))
        if kind == "cam":
            assert rej["short"].startswith("context too short")
            assert scored == {r["id"] for r in recs}
        else:
            assert scored == {r["id"] for r in recs} | {"short"}


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def _cli(*args):
    return [sys.executable, "-m", "longcurate", *args]


def test_sigkill_then_resume(tmp_path, tiny_folder):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, make_samples(16, seed=9, min_par=4, max_par=10))
    ref = tmp_path / "ref/hmg.jsonl"
    _score("hmg", inp, ref, tiny_folder)
    out = tmp_path / "run/hmg.jsonl"
    args = ["select", "score", "hmg", "--input", str(inp), "--output", str(out), "--model", str(tiny_folder), "--window", "256",
            "select.max_segments=4", "select.chunk_size=1", "select.max_batch_size=1", *FP32]
    proc = subprocess.Popen(_cli(*args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = tmp_path / "run/hmg.part-0-of-1.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if part.exists() and len(part.read_bytes().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(part.read_bytes().splitlines())
    assert 3 <= n_before < 16 and not out.exists()
    with open(part, "ab") as f:
        f.write(b'{"id": "s0')  # a torn last line, as a crash mid-write leaves
    subprocess.run(_cli(*args), env=_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ids = [r["id"] for r in _read(part)]
    assert len(ids) == len(set(ids)) == 16
    _assert_same(_by_id(ref), _by_id(out))


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, data, tiny_folder, run_group):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed")
    one = tmp_path / "one/hmg.jsonl"
    _score("hmg", data, one, tiny_folder)
    two = tmp_path / "two/hmg.jsonl"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "longcurate", "select", "score", "hmg",
           "--input", str(data), "--output", str(two), "--model", str(tiny_folder), "--window", "256",
           "select.chunk_size=3", *FP32]
    res = run_group(cmd, env=_env(), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "two/hmg.part-0-of-2.jsonl").exists() and (tmp_path / "two/hmg.part-1-of-2.jsonl").exists()
    _assert_same(_by_id(one), _by_id(two))


def test_stage_rerun_redoes_nothing(tmp_path, tiny_folder):
    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from longcurate.select.stage import run_stage

    out = tmp_path / "run"
    out.mkdir()
    write_jsonl(out / "samples.jsonl", make_samples(6, seed=11, min_par=2, max_par=6))
    cfg = build(RunConfig, {"output_dir": str(out), "model": str(tiny_folder),
                            "select": {"dtype": "float32", "device": "cpu", "window": 256, "max_segments": 4,
                                       "budgets": [2, 0.5]}})
    stats = run_stage(cfg)
    assert stats["hmg"]["merged"]["scored"] == 6 and "diagnose" in stats
    files = sorted(p for p in out.rglob("*") if p.is_file() and "manifest" not in p.name)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    stats2 = run_stage(cfg)
    assert stats2["hmg"].get("skipped") and stats2["cam"].get("skipped") and stats2["rank"].get("skipped")
    assert stats2["budget"].get("skipped")
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files if p.name != "diagnostics.json"}
    assert all(after[p] == before[p] for p in after)
    assert (out / "budgets/gateau-2.jsonl").exists() and (out / "budgets/cam-only-0.5.jsonl").exists()


def test_stage_rerun_with_changed_settings(tmp_path, tiny_folder, monkeypatch):
    """Another alpha redoes rank and budgets only; another hmg_scale re-merges without scoring; another
    window is refused (the parts were scored with the old one) instead of being mixed in."""
    import dataclasses

    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from longcurate.select import scoring
    from longcurate.select.stage import run_stage

    out = tmp_path / "run"
    out.mkdir()
    write_jsonl(out / "samples.jsonl", make_samples(6, seed=12, min_par=2, max_par=6))
    cfg = build(RunConfig, {"output_dir": str(out), "model": str(tiny_folder),
                            "select": {"dtype": "float32", "device": "cpu", "window": 256, "max_segments": 4,
                                       "budgets": [2, 4], "alpha": 0.8}})
    run_stage(cfg)
    ranked_before = (out / "select/ranked.jsonl").read_bytes()
    hmg_before = _by_id(out / "select/hmg.jsonl")

    def no_models(*a, **kw):
        raise AssertionError("nothing should be re-scored")

    monkeypatch.setattr(scoring, "load_engines", no_models)
    cfg2 = dataclasses.replace(cfg, select=dataclasses.replace(cfg.select, alpha=0.3, budgets=[3]))
    stats = run_stage(cfg2)
    assert stats["hmg"].get("skipped") and stats["cam"].get("skipped")
    assert not stats["rank"].get("skipped") and not stats["budget"].get("skipped")
    assert (out / "select/ranked.jsonl").read_bytes() != ranked_before
    assert json.loads((out / "select/ranked.jsonl.done").read_text())["params"]["alpha"] == 0.3
    assert (out / "budgets/gateau-3.jsonl").exists() and not (out / "budgets/gateau-2.jsonl").exists()

    cfg3 = dataclasses.replace(cfg2, select=dataclasses.replace(cfg2.select, hmg_scale="ppl"))
    stats = run_stage(cfg3)
    assert "merged" in stats["hmg"] and stats["cam"].get("skipped")
    hmg_after = _by_id(out / "select/hmg.jsonl")
    assert all(hmg_after[i]["nll_b"] == hmg_before[i]["nll_b"] for i in hmg_before)
    assert any(hmg_after[i]["hmg"] != hmg_before[i]["hmg"] for i in hmg_before)
    assert not stats["rank"].get("skipped")  # its input changed

    cfg4 = dataclasses.replace(cfg3, select=dataclasses.replace(cfg3.select, window=128))
    with pytest.raises(ValueError, match=r"window: 256 -> 128"):
        run_stage(cfg4)


_STAND_IN_SBATCH = '''#!{python}
"""sbatch for the test: runs a --wrap job at once (each --array task in turn), prints a job id."""
import os, re, subprocess, sys
args = sys.argv[1:]
wrap = args[args.index("--wrap") + 1]
array = next((a.split("=", 1)[1] for a in args if a.startswith("--array=")), None)
first, last = map(int, array.split("-")) if array else (None, None)
for task in ([None] if array is None else range(first, last + 1)):
    env = dict(os.environ, **({{"SLURM_ARRAY_TASK_ID": str(task)}} if task is not None else {{}}))
    subprocess.run(["bash", "-c", wrap], env=env, check=True)
print("4242")
'''


def test_score_multigpu_script_array_mode_is_one_joint_pass(tmp_path, data, tiny_folder):
    """scripts/score_multigpu.sh under a stand-in Slurm: two array tasks each run `select score both`
    (one θ_B forward per sample for HMG and CAM), the dependent job merges both kinds; the merged scores
    equal one unsharded `select score both`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", _STAND_IN_SBATCH.format(python=sys.executable)),
                       ("longcurate", f'#!/bin/sh\nexec {sys.executable} -m longcurate "$@"\n')):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    score_args = (f"select.model={tiny_folder} select.window=256 select.max_segments=4 select.chunk_size=3 "
                  + " ".join(FP32))
    env = {**_env(), "PATH": f"{bin_dir}:{os.environ['PATH']}", "SCORE_ARGS": score_args}
    res = subprocess.run(["bash", str(ROOT / "scripts/score_multigpu.sh"), "array", str(data), str(tmp_path / "two"), "2"],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "two").glob("*.part-*-of-2.jsonl")) == [
        "cam.part-0-of-2.jsonl", "cam.part-1-of-2.jsonl", "hmg.part-0-of-2.jsonl", "hmg.part-1-of-2.jsonl"]
    assert main(["select", "score", "both", "--input", str(data), "--scores-dir", str(tmp_path / "one"),
                 *score_args.split()]) == 0
    for kind in ("hmg", "cam"):
        _assert_same(_by_id(tmp_path / f"one/{kind}.jsonl"), _by_id(tmp_path / f"two/{kind}.jsonl"))
