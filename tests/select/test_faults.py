"""Faults a week-long unattended run meets in the select stage: two runs on one output (one stops at
once with the lock holder's pid and host; the output equals a single run's), shards merged twice,
user errors that print one line and exit 2, and a score step that produced nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.core.lock import lock_path

from .conftest import make_samples, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
FP32 = ["select.dtype=float32", "select.device=cpu"]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def _score_args(inp, out, model, *extra):
    return ["select", "score", "hmg", "--input", str(inp), "--output", str(out), "--model", str(model),
            "--window", "256", "select.chunk_size=1", "select.max_batch_size=1", *FP32, *extra]


def _one_line_error(capsys) -> str:
    """The one error line (progress bars may precede it on stderr); no traceback."""
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("longcurate: error: ")]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]), err[-2000:]
    assert "Traceback" not in err
    return lines[0]


def _holder(part: Path) -> dict | None:
    """Who holds the part's lock, as `core.lock` records it beside the lock file (None: nobody yet)."""
    owner = lock_path(part).with_name(lock_path(part).name + ".owner")
    try:
        return json.loads(owner.read_text())
    except (OSError, ValueError):
        return None


def test_two_concurrent_score_runs_on_one_output(tmp_path, tiny_folder):
    """A second `select score hmg` on the output a first one is writing stops at once (exit 2, one line
    naming the holder's pid and host); the first finishes, and the output is a single run's."""
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, make_samples(30, seed=21, min_par=6, max_par=12))
    ref = tmp_path / "ref/hmg.jsonl"
    assert main(_score_args(inp, ref, tiny_folder)) == 0
    out = tmp_path / "run/hmg.jsonl"
    part = tmp_path / "run/hmg.part-0-of-1.jsonl"
    cmd = [sys.executable, "-m", "longcurate", *_score_args(inp, out, tiny_folder)]
    first = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and first.poll() is None and _holder(part) is None:
        time.sleep(0.02)
    assert (_holder(part) or {}).get("pid") == first.pid, "the first run never took the lock"
    second = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert first.poll() is None, "the first run finished before the second reached the lock; give it more work"
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2, second.stderr[-2000:]
    message = [x for x in second.stderr.splitlines() if x.startswith("longcurate: error: ")]
    assert len(message) == 1 and f"is being written by pid {first.pid} on " in message[0], second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    ids = [json.loads(x)["id"] for x in part.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 30
    assert out.read_bytes() == ref.read_bytes()


def _parts(tmp_path, tiny_folder):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, make_samples(6, seed=5, min_par=3, max_par=6))
    out = tmp_path / "hmg.jsonl"
    for k in (0, 1):
        assert main(_score_args(data, out, tiny_folder, "--num-shards", "2", "--shard-index", str(k))) == 0
    return data, out


def test_merge_keeps_identical_repeats_and_refuses_conflicting_ones(tmp_path, tiny_folder, capsys, caplog):
    data, out = _parts(tmp_path, tiny_folder)
    part = tmp_path / "hmg.part-1-of-2.jsonl"
    lines = part.read_text().splitlines()
    merge = ["select", "merge", "--kind", "hmg", "--input", str(data), "--output", str(out)]
    part.write_text("\n".join(lines + lines[:1]) + "\n")  # an id scored twice with the same values
    with caplog.at_level("WARNING", logger="longcurate.select"):
        assert main([*merge, "--num-shards", "2"]) == 0
    assert any("scored twice with identical values; kept one" in r.getMessage() for r in caplog.records)
    merged = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(merged) == 6 == len({r["id"] for r in merged})
    assert json.loads((tmp_path / "hmg.jsonl.done").read_text())["repeated_identical"] == 1
    first = json.loads(lines[0])
    changed = json.dumps({**first, "nll_a": first["nll_a"] + 1.0})
    part.write_text("\n".join(lines + [changed]) + "\n")  # the same id with other values
    capsys.readouterr()
    assert main([*merge, "--num-shards", "2"]) == 2
    line = _one_line_error(capsys)
    assert "scored more than once with different values" in line and first["id"] in line
    part.write_text("\n".join(lines[1:]) + "\n")  # an id missing
    assert main([*merge, "--num-shards", "2"]) == 2
    assert "neither scored nor rejected" in _one_line_error(capsys)


def test_merge_defaults_to_world_size_or_one(tmp_path, tiny_folder, monkeypatch):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, make_samples(4, seed=6, min_par=3, max_par=5))
    out = tmp_path / "hmg.jsonl"
    assert main(_score_args(data, out, tiny_folder, "--num-shards", "1", "--shard-index", "0")) == 0
    out.unlink()
    (tmp_path / "hmg.jsonl.done").unlink()
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["select", "merge", "--kind", "hmg", "--input", str(data), "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 4


def test_nothing_scored_is_an_error_without_a_marker(tmp_path, tiny_folder, capsys):
    recs = make_samples(3, seed=8, min_par=3, max_par=4)
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [dict(r, response=" ") for r in recs])
    out = tmp_path / "hmg.jsonl"
    assert main(_score_args(inp, out, tiny_folder)) == 2
    line = _one_line_error(capsys)
    assert "no sample could be scored" in line and "empty response: 3" in line
    assert not out.exists() and not (tmp_path / "hmg.jsonl.done").exists()
    assert len((tmp_path / "hmg.rejected.jsonl").read_text().splitlines()) == 3


def test_a_score_that_rejected_every_sample_does_not_block_the_corrected_rerun(tmp_path, tiny_folder, capsys):
    """Every sample rejected: the part is finished but holds no score, so its settings bind nobody and
    the rerun on the corrected input (another digest) is not refused as "changed since it was begun"."""
    recs = make_samples(3, seed=8, min_par=3, max_par=4)
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [dict(r, response=" ") for r in recs])
    out = tmp_path / "hmg.jsonl"
    assert main(_score_args(inp, out, tiny_folder)) == 2
    assert "no sample could be scored" in _one_line_error(capsys)
    assert (tmp_path / "hmg.part-0-of-1.jsonl.done").exists()
    write_jsonl(inp, recs)  # the responses put back
    assert main(_score_args(inp, out, tiny_folder)) == 0
    assert len(out.read_text().splitlines()) == 3 and not (tmp_path / "hmg.rejected.jsonl").exists()
    assert json.loads((tmp_path / "hmg.jsonl.done").read_text())["scored"] == 3


def test_changed_scoring_settings_and_input_are_refused_in_one_line(tmp_path, tiny_folder, capsys):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, make_samples(3, seed=9, min_par=3, max_par=4))
    out = tmp_path / "hmg.jsonl"
    assert main(_score_args(inp, out, tiny_folder)) == 0
    capsys.readouterr()
    assert main(_score_args(inp, out, tiny_folder, "--window", "128")) == 2
    assert "window: 256 -> 128" in _one_line_error(capsys)
    write_jsonl(inp, make_samples(4, seed=9, min_par=3, max_par=4))  # the input edited in place
    assert main(_score_args(inp, out, tiny_folder)) == 2
    line = _one_line_error(capsys)
    assert f"the input {inp} changed since {out} was begun" in line and "input_sha256" in line


def _hmg_file(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("rows, message", [
    ([{"id": "a", "hmg": 0.1}, {"id": "a", "hmg": 0.2}], "hmg.jsonl:2: id 'a' repeated (first on line 1)"),
    ([{"id": "a", "hmg": 0.1}, {"id": "b"}], "hmg.jsonl:2: missing field 'hmg' (id b)"),
    ([{"hmg": 0.1}], "hmg.jsonl:1: missing field 'id'"),
    (["{torn"], "hmg.jsonl:1"),
])
def test_rank_input_errors_are_one_line(tmp_path, capsys, rows, message):
    hmg = _hmg_file(tmp_path / "hmg.jsonl", rows)
    assert main(["select", "rank", "--hmg", str(hmg), "--output", str(tmp_path / "ranked.jsonl")]) == 2
    assert message in _one_line_error(capsys)


@pytest.mark.parametrize("size", ["0", "-5", "2.5"])
def test_bad_budget_sizes_exit_2(tmp_path, capsys, size):
    assert main(["select", "budget", size, "--ranked", str(tmp_path / "ranked.jsonl"),
                 "--out-dir", str(tmp_path / "budgets")]) == 2
    line = _one_line_error(capsys)
    assert size in line and ("positive" in line or "neither a whole size" in line)
    assert main(["select", "budget", f"output_dir={tmp_path}", f"select.budgets=[{size}]"]) == 2
    assert size in _one_line_error(capsys)
    assert not (tmp_path / "budgets").exists()


def test_unwritable_output_folder_exits_2(tmp_path, capsys):
    hmg = _hmg_file(tmp_path / "hmg.jsonl", [{"id": "a", "hmg": 0.1}, {"id": "b", "hmg": 0.3}])
    if os.geteuid() == 0:
        target = Path("/sys/longcurate-test")  # root writes anywhere a chmod forbids; not into /sys
    else:
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(0o555)
    assert main(["select", "rank", "--hmg", str(hmg), "--output", str(target / "ranked.jsonl")]) == 2
    line = _one_line_error(capsys)
    assert str(target) in line and ("not permitted" in line or "denied" in line)


def test_unknown_score_kind_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["select", "score", "ppl"])
    assert e.value.code == 2
    assert "invalid choice: 'ppl'" in capsys.readouterr().err


def test_budgets_from_an_empty_ranking_is_an_error(tmp_path, capsys):
    (tmp_path / "ranked.jsonl").write_text("")
    assert main(["select", "budget", "2", f"output_dir={tmp_path}", "--ranked", str(tmp_path / "ranked.jsonl")]) == 2
    assert "no ranked samples to write budgets from" in _one_line_error(capsys)
    assert not (tmp_path / "budgets" / "budgets.jsonl.done").exists()
