"""The step runner: lock, skip, redo or refuse, resume, quarantine reset, marker last, incomplete."""

import json
import multiprocessing as mp

import pytest

from longcurate.core.completion import settings_file
from longcurate.core.errors import Incomplete, SettingsChanged
from longcurate.core.jsonl import ResumableWriter, done_marker, read_jsonl, rejected_path, write_jsonl
from longcurate.core.lock import OutputLocked, output_lock
from longcurate.core.runner import (StepSpec, holds_records, incomplete_parts, raise_if_incomplete, run_step,
                                     run_steps, step_state)


def _writer(records):
    def work(run):
        write_jsonl(run.output, records)
        return {"n": len(records)}
    return work


def test_runs_once_then_skips_with_the_recorded_stats(tmp_path):
    out = tmp_path / "x.jsonl"
    calls = []

    def work(run):
        calls.append(run.resumed)
        write_jsonl(run.output, [{"id": "a"}])
        return {"n": 1}

    spec = StepSpec("x", out, {"k": 1})
    assert run_step(spec, work) == {"n": 1}
    assert json.loads(done_marker(out).read_text()) == {"n": 1, "params": {"k": 1}}
    assert run_step(spec, work) == {"n": 1, "skipped": True}
    assert calls == [False]
    assert step_state(spec) == {"n": 1}


def test_redo_on_other_settings_and_refuse_names_the_keys(tmp_path):
    out = tmp_path / "x.jsonl"
    run_step(StepSpec("x", out, {"k": 1}), _writer([{"id": "a"}]))
    assert run_step(StepSpec("x", out, {"k": 2}), _writer([{"id": "b"}, {"id": "c"}])) == {"n": 2}
    with pytest.raises(SettingsChanged, match="k: 2 -> 3"):
        run_step(StepSpec("x", out, {"k": 3}, on_change="refuse"), _writer([]))
    assert [r["id"] for _, r in read_jsonl(out)] == ["b", "c"]  # refused: untouched


def test_a_fresh_run_starts_a_new_quarantine_but_a_resumed_one_keeps_it(tmp_path):
    out = tmp_path / "x.jsonl"
    rejected_path(out).write_text('{"reason": "old"}\n')
    run_step(StepSpec("x", out, {"k": 1}), _writer([]))
    assert not rejected_path(out).exists()


def test_a_failing_work_leaves_no_marker_and_the_rerun_resumes(tmp_path):
    out = tmp_path / "x.jsonl"
    spec = StepSpec("x", out, {"k": 1}, resumable=True, on_change="refuse")

    def crash(run):
        with ResumableWriter(run.output) as w:
            w.write({"id": "a"})
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_step(spec, crash)
    assert not done_marker(out).exists() and json.loads(settings_file(out).read_text()) == {"k": 1}
    seen = []

    def finish(run):
        seen.append(run.resumed)
        with ResumableWriter(run.output) as w:
            w.write({"id": "a"})
            w.write({"id": "b"})
        return {"n": 2}

    assert run_step(spec, finish) == {"n": 2}
    assert seen == [True] and [r["id"] for _, r in read_jsonl(out)] == ["a", "b"]
    with pytest.raises(SettingsChanged):  # appended-to output begun under other settings
        run_step(StepSpec("x", out, {"k": 2}, resumable=True, on_change="refuse"), finish)


def test_settings_of_a_run_that_wrote_nothing_do_not_block_a_corrected_rerun(tmp_path):
    out = tmp_path / "x.jsonl"
    with pytest.raises(ValueError):
        run_step(StepSpec("x", out, {"field": "bad"}, resumable=True, on_change="refuse"),
                 lambda run: (_ for _ in ()).throw(ValueError("no such field")))
    assert settings_file(out).exists() and not out.exists()
    assert run_step(StepSpec("x", out, {"field": "good"}, resumable=True, on_change="refuse"),
                    _writer([{"id": "a"}])) == {"n": 1}


def test_output_without_recorded_settings_is_refused_not_mixed_into(tmp_path):
    out = tmp_path / "x.jsonl"
    write_jsonl(out, [{"id": "hand-made"}])
    with pytest.raises(SettingsChanged, match="records no settings"):
        run_step(StepSpec("x", out, {"k": 1}, resumable=True), _writer([]))


def test_incomplete_work_gets_no_marker_and_is_reported(tmp_path):
    out = tmp_path / "x.jsonl"
    spec = StepSpec("x", out, {"k": 1})
    stats = run_step(spec, lambda run: {"complete": False, "pending": 3, "failed": 1})
    assert not done_marker(out).exists() and step_state(spec) is None
    assert incomplete_parts({"synth": stats, "ok": {"n": 1}}) == ["synth: 3 pending, 1 failed"]
    with pytest.raises(Incomplete, match="synth incomplete: run: 3 pending, 1 failed"):
        raise_if_incomplete(stats, "synth")
    raise_if_incomplete({"a": {"complete": True}}, "x")  # complete: nothing raised


def test_done_when_sends_a_finished_output_back_to_work_as_a_resume(tmp_path):
    out = tmp_path / "x.jsonl"
    spec = StepSpec("x", out, {"k": 1}, resumable=True, done_when=lambda s: s.get("n") == 2)
    run_step(StepSpec("x", out, {"k": 1}, resumable=True), _writer([{"id": "a"}]))
    got = []
    run_step(spec, lambda run: got.append((run.resumed, run.previous)) or {"n": 2})
    assert got == [(True, {"n": 1})]


def test_also_outputs_must_exist_for_the_step_to_be_complete(tmp_path):
    out, extra = tmp_path / "x.jsonl", tmp_path / "results.json"
    spec = StepSpec("x", out, {}, also_outputs=(extra,))

    def work(run):
        write_jsonl(out, [])
        extra.write_text("{}")
        return {}

    run_step(spec, work)
    extra.unlink()
    assert step_state(spec) is None
    assert "skipped" not in run_step(spec, work)


def _hold(path, ready, release):
    with output_lock(path):
        ready.set()
        release.wait(10)


def test_a_second_runner_stops_at_the_lock(tmp_path):
    out = tmp_path / "x.jsonl"
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(out, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(OutputLocked):
            run_step(StepSpec("x", out, {}), _writer([]))
    finally:
        release.set()
        holder.join(10)
    assert not done_marker(out).exists()


def test_non_main_ranks_neither_lock_nor_mark(tmp_path):
    out = tmp_path / "x.jsonl"
    with output_lock(out):  # rank 0 holds it
        stats = run_step(StepSpec("x", out, {}, main_process=False), _writer([]))
    assert stats == {"n": 0} and not done_marker(out).exists()


def test_run_steps_makes_only_the_pending_outputs_each_with_its_own_marker(tmp_path):
    a, b = StepSpec("a", tmp_path / "a.jsonl", {"k": 1}), StepSpec("b", tmp_path / "b.jsonl", {"k": 2})
    run_step(a, _writer([{"id": "x"}]))
    got = []

    def both(runs):
        got.append([r.spec.name for r in runs])
        return {r.spec.name: _writer([{"id": "y"}])(r) for r in runs}

    assert run_steps([a, b], both) == {"a": {"n": 1, "skipped": True}, "b": {"n": 1}}
    assert got == [["b"]] and json.loads(done_marker(b.output).read_text())["params"] == {"k": 2}
    assert run_steps([a, b], both) == {"a": {"n": 1, "skipped": True}, "b": {"n": 1, "skipped": True}}
    assert got == [["b"]]  # nothing pending: no work


def test_run_steps_checks_every_output_before_touching_any(tmp_path):
    a = StepSpec("a", tmp_path / "a.jsonl", {"k": 1})
    run_step(a, _writer([{"id": "x"}]))
    b = StepSpec("b", tmp_path / "b.jsonl", {"k": 1}, on_change="refuse")
    run_step(b, _writer([{"id": "y"}]))
    with pytest.raises(SettingsChanged):
        run_steps([StepSpec("a", a.output, {"k": 2}), StepSpec("b", b.output, {"k": 2}, on_change="refuse")],
                  lambda runs: {})
    assert done_marker(a.output).exists()  # a's old marker was not dropped before b refused


def _shard(tmp_path, k, settings, **kw):
    merged = tmp_path / "s.jsonl"
    parts = [tmp_path / f"s.part-{i}-of-2.jsonl" for i in range(2)]
    return StepSpec(f"shard {k}", parts[k], settings, on_change="refuse", resumable=True,
                    begun_at=settings_file(merged), partial=lambda: any(holds_records(p) for p in parts), **kw)


def test_shards_share_the_settings_they_began_with(tmp_path):
    run_step(_shard(tmp_path, 0, {"w": 1}), _writer([{"id": "a"}]))
    assert json.loads(settings_file(tmp_path / "s.jsonl").read_text()) == {"w": 1}
    with pytest.raises(SettingsChanged, match="w: 1 -> 2"):  # shard 1 may not start under other settings
        run_step(_shard(tmp_path, 1, {"w": 2}), _writer([{"id": "b"}]))
    seen = []
    run_step(_shard(tmp_path, 1, {"w": 1}), lambda run: seen.append(run.resumed) or {"n": 0})
    assert seen == [True]


def test_a_finished_output_that_holds_no_record_does_not_bind_its_settings(tmp_path):
    empty = _shard(tmp_path, 0, {"input": "bad"})
    run_step(empty, _writer([]))  # every record rejected: an empty, finished part
    assert done_marker(empty.output).exists() and step_state(empty) == {"n": 0}
    fixed = _shard(tmp_path, 0, {"input": "good"})
    assert step_state(fixed) is None
    assert run_step(fixed, _writer([{"id": "a"}])) == {"n": 1}
    with pytest.raises(SettingsChanged):  # now it holds a record: other settings are refused
        run_step(_shard(tmp_path, 0, {"input": "other"}), _writer([]))


def test_an_incomplete_part_is_named_by_its_output_and_says_why():
    stats = {"output": "run/samples.jsonl", "complete": False, "pending": 12, "why": "circuit breaker",
             "heldout": {"output": "run/heldout.jsonl", "complete": False, "pending": 2}}
    assert incomplete_parts({"synth": stats}) == ["run/samples.jsonl: 12 pending (circuit breaker)",
                                                  "run/heldout.jsonl: 2 pending"]


def test_non_main_ranks_leave_what_binds_nobody_to_rank_0(tmp_path):
    out = tmp_path / "x.jsonl"
    run_step(StepSpec("x", out, {"k": 1}, resumable=True, on_change="refuse"), _writer([]))  # finished, empty
    marker, begun = done_marker(out).read_text(), settings_file(out).read_text()
    seen = []
    stats = run_step(StepSpec("x", out, {"k": 2}, resumable=True, on_change="refuse", main_process=False),
                     lambda run: seen.append(run.resumed) or {"n": 0})
    assert stats == {"n": 0} and seen == [False]
    assert done_marker(out).read_text() == marker and settings_file(out).read_text() == begun  # untouched
