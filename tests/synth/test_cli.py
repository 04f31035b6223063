"""The real CLI end to end: determinism, resume after SIGKILL, bad input, re-runs that redo nothing,
and the report."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from longcurate.cli import build_parser, main
from longcurate.config import resolve_config
from longcurate.core.errors import SettingsChanged
from longcurate.synth.pipeline import run_synth

ROOT = Path(__file__).resolve().parents[2]


def _args(corpus: Path, out: Path, n: int, lo: int, hi: int, seed: int = 3) -> list[str]:
    return ["synth", "run", "--corpus", str(corpus), "--output", str(out), "--num-samples", str(n),
            "--min-tokens", str(lo), "--max-tokens", str(hi), "--seed", str(seed), "--no-progress",
            f"output_dir={out.parent}"]


def _run_inprocess(argv: list[str], tokenizer) -> dict:
    args = build_parser().parse_args(argv)
    return run_synth(resolve_config(args), progress=False, tokenizer=tokenizer)


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1"}


def test_same_config_and_seed_give_identical_files(corpus, tmp_path, tokenizer):
    a, b = tmp_path / "a" / "s.jsonl", tmp_path / "b" / "s.jsonl"
    _run_inprocess(_args(corpus, a, 120, 1024, 4096), tokenizer)
    _run_inprocess(_args(corpus, b, 120, 1024, 4096), tokenizer)
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_bytes().splitlines()) == 120
    c = tmp_path / "c" / "s.jsonl"
    _run_inprocess(_args(corpus, c, 120, 1024, 4096, seed=4), tokenizer)
    assert c.read_bytes() != a.read_bytes()


def test_resume_after_sigkill_equals_uninterrupted(corpus, tmp_path, tokenizer):
    out = tmp_path / "killed" / "s.jsonl"
    argv = _args(corpus, out, 800, 2048, 6144)
    cmd = [sys.executable, "-m", "longcurate", *argv]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    killed_at = None
    try:
        while proc.poll() is None and time.time() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") >= 40:
                proc.send_signal(signal.SIGKILL)
                killed_at = out.read_bytes().count(b"\n")
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert killed_at is not None, "the run finished before it could be killed"
    partial = out.read_bytes().count(b"\n")
    assert 40 <= partial < 800
    assert not out.with_name(out.name + ".done").exists()
    rerun = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "already done" in rerun.stdout
    ref = tmp_path / "ref" / "s.jsonl"
    _run_inprocess(_args(corpus, ref, 800, 2048, 6144), tokenizer)
    assert out.read_bytes() == ref.read_bytes()
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 800


def test_bad_input_is_quarantined_and_the_run_completes(corpus, tmp_path, tokenizer):
    bad = tmp_path / "bad.jsonl"
    good = corpus.read_bytes().splitlines(keepends=True)[:80]
    bad.write_bytes(b"".join(good[:10])
                    + b'{"id": "latin1", "text": "Caf\xe9 society in the nineteenth century was lively."}\n'
                    + b'{"id": "empty", "title": "Nothing", "text": ""}\n'
                    + b'{"id": "tiny", "title": "Tiny", "text": "Too short to be a segment."}\n'
                    + b'{"id": "notext", "title": "No text", "body": "The text is under another key."}\n'
                    + b"".join(good[10:]))
    out = tmp_path / "run" / "s.jsonl"
    cmd = [sys.executable, "-m", "longcurate", *_args(bad, out, 60, 1024, 2048)]
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(out.read_text().splitlines()) == 60
    rejected = [json.loads(x) for x in (tmp_path / "run" / "s.rejected.jsonl").read_text().splitlines()]
    by_line = {r["line"]: r for r in rejected}
    assert by_line[11]["reason"].startswith("not UTF-8")
    assert by_line[12]["reason"] == "empty document" and by_line[12]["id"] == "empty"
    assert by_line[13]["reason"].startswith("document shorter than one segment") and by_line[13]["id"] == "tiny"
    assert by_line[14]["reason"] == "missing text field: 'text'" and by_line[14]["field"] == "text"
    assert all(r["file"] == str(bad) for r in rejected)
    n_other = sum(1 for r in rejected if r["line"] not in (11, 12, 13, 14))
    assert f"rejected: {4 + n_other}" in res.stdout
    assert "empty document: 1" in res.stdout and "not UTF-8: 1" in res.stdout
    assert "samples: 60" in res.stdout  # the report follows
    manifest = json.loads((tmp_path / "run" / "synth.manifest.json").read_text())  # <output_dir>/synth.manifest.json
    assert manifest["stage"] == "synth" and manifest["stats"]["num_samples"] == 60

    # a re-run with the completion marker redoes nothing
    before = out.stat().st_mtime_ns
    stats = _run_inprocess(_args(bad, out, 60, 1024, 2048), tokenizer)
    assert stats.get("skipped") and out.stat().st_mtime_ns == before
    # a different seed on the same output is refused instead of mixed in
    with pytest.raises(SettingsChanged, match="seed: 3 -> 9"):
        _run_inprocess(_args(bad, out, 60, 1024, 2048, seed=9), tokenizer)


def test_a_samples_file_begun_with_other_settings_is_refused_naming_the_keys(corpus, tmp_path, tokenizer, capsys):
    out = tmp_path / "run" / "s.jsonl"
    ref = tmp_path / "ref" / "s.jsonl"
    _run_inprocess(_args(corpus, ref, 20, 1024, 2048), tokenizer)
    _run_inprocess(_args(corpus, out, 20, 1024, 2048), tokenizer)
    # as if killed after 5 samples: a partial file, no completion marker
    out.write_bytes(b"".join(out.read_bytes().splitlines(keepends=True)[:5]))
    out.with_name(out.name + ".done").unlink()
    partial = out.read_bytes()
    with pytest.raises(SettingsChanged, match=r"synth\.max_tokens: 2048 -> 3000"):
        _run_inprocess(_args(corpus, out, 20, 1024, 3000), tokenizer)
    with pytest.raises(SettingsChanged, match=r"seed: 3 -> 4.*synth\.min_tokens: 1024 -> 1100|"
                                              r"synth\.min_tokens: 1024 -> 1100.*seed: 3 -> 4"):
        _run_inprocess(_args(corpus, out, 20, 1100, 2048, seed=4), tokenizer)
    capsys.readouterr()
    assert main(_args(corpus, out, 20, 1024, 3000)) == 2  # the command: one line, no traceback
    err = capsys.readouterr().err
    assert "synth.max_tokens: 2048 -> 3000" in err and "Traceback" not in err
    assert out.read_bytes() == partial  # refused: nothing mixed in
    stats = _run_inprocess(_args(corpus, out, 20, 1024, 2048), tokenizer)  # same settings: resumed
    assert stats["already_done"] == 5 and stats["written"] == 15
    assert out.read_bytes() == ref.read_bytes()


def test_more_samples_extend_a_finished_file(corpus, tmp_path, tokenizer):
    out = tmp_path / "run" / "s.jsonl"
    _run_inprocess(_args(corpus, out, 10, 1024, 2048), tokenizer)
    first = out.read_bytes()
    stats = _run_inprocess(_args(corpus, out, 16, 1024, 2048), tokenizer)
    assert stats["already_done"] == 10 and stats["written"] == 6 and not stats.get("skipped")
    assert out.read_bytes().startswith(first) and len(out.read_bytes().splitlines()) == 16
    ref = tmp_path / "ref" / "s.jsonl"
    _run_inprocess(_args(corpus, ref, 16, 1024, 2048), tokenizer)
    assert out.read_bytes() == ref.read_bytes()
    assert _run_inprocess(_args(corpus, out, 16, 1024, 2048), tokenizer).get("skipped")


def test_a_samples_file_without_recorded_settings_is_refused(corpus, tmp_path, tokenizer):
    out = tmp_path / "run" / "s.jsonl"
    out.parent.mkdir(parents=True)
    out.write_text('{"id": "in2-000000"}\n')  # e.g. written by hand, or by an older version
    with pytest.raises(SettingsChanged, match="records no settings"):
        _run_inprocess(_args(corpus, out, 5, 1024, 2048), tokenizer)
    assert out.read_text() == '{"id": "in2-000000"}\n'


def test_report_command(corpus, tmp_path, tokenizer, capsys):
    out = tmp_path / "s.jsonl"
    _run_inprocess(_args(corpus, out, 50, 1024, 2048), tokenizer)
    capsys.readouterr()
    assert main(["synth", "report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "samples: 50" in text and "by kind:" in text and "by generator:" in text
    assert "length deciles" in text and "gold position in context" in text
    assert "template:sentence_recall" in text


def test_flags_map_to_config_keys(tmp_path):
    args = build_parser().parse_args(["synth", "run", "--corpus", "c.jsonl", "--backend", "openai", "--model", "m",
                                      "--seed", "7", "--num-samples", "9", "synth.corpus.text_field=body",
                                      "--min-tokens", "10", "--max-tokens", "20", "--output", "o.jsonl"])
    cfg = resolve_config(args)
    assert (cfg.synth.corpus.path, cfg.synth.backend, cfg.model, cfg.seed) == ("c.jsonl", "openai", "m", 7)
    assert (cfg.synth.num_samples, cfg.synth.min_tokens, cfg.synth.max_tokens) == (9, 10, 20)
    assert cfg.synth.output == "o.jsonl" and cfg.synth.corpus.text_field == "body"


def test_two_runs_on_one_output_one_writes_the_other_stops_at_the_lock(corpus, tmp_path, tokenizer):
    out = tmp_path / "run" / "s.jsonl"
    cmd = [sys.executable, "-m", "longcurate", *_args(corpus, out, 400, 2048, 6144)]
    first = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    owner = out.with_name(out.name + ".lock.owner")
    deadline = time.time() + 120
    while not owner.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert owner.exists(), "the first run never took the lock"
    second = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert first.poll() is None, "the first run finished before the second one started: make it longer"
    out_1, err_1 = first.communicate(timeout=600)
    assert first.returncode == 0, err_1[-2000:]
    assert second.returncode == 2
    line = second.stderr.strip().splitlines()[-1]
    assert f"pid {first.pid} on {socket.gethostname()}" in line and "is being written by" in line
    assert "Traceback" not in second.stderr and "wrote" not in second.stdout
    ref = tmp_path / "ref" / "s.jsonl"
    _run_inprocess(_args(corpus, ref, 400, 2048, 6144), tokenizer)
    assert out.read_bytes() == ref.read_bytes()  # one run's samples, no duplicate
    assert not owner.exists()  # released


def test_counts_below_one_are_refused_in_one_line(corpus, tmp_path, capsys):
    for bad in (["--num-samples", "-3"], ["--num-samples", "0"], ["synth.corpus.max_doc_tokens=0"],
                ["--heldout-samples", "-1"], ["synth.openai.max_consecutive_failures=0"]):
        capsys.readouterr()
        assert main(["synth", "run", "--corpus", str(corpus), f"output_dir={tmp_path}", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "must be >=" in err and "Traceback" not in err, err
    assert not (tmp_path / "samples.jsonl").exists()


def test_a_run_that_makes_nothing_fails_and_says_why(tmp_path, capsys):
    corpus = tmp_path / "untitled.jsonl"
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(12):  # no segment names its title, so no `topic` question can be asked
            text = " ".join(f"Paragraph {i}.{k} describes the {k + 2} mills along the northern canal in detail."
                            for k in range(12))
            f.write(json.dumps({"id": f"d{i}", "title": f"Zq{i}", "text": text}) + "\n")
    out = tmp_path / "run" / "s.jsonl"
    argv = [*_args(corpus, out, 10, 256, 512), "synth.fine_types=[topic]", "synth.multihop_fraction=0",
            "synth.short_fraction=0", "synth.max_attempts=2"]
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "synth made no sample" in captured.err and "qa: no topic: 20" in captured.err
    assert "samples given up: 10" in captured.out
    assert not out.with_name(out.name + ".done").exists()


def test_a_run_stopped_by_a_bad_text_field_does_not_block_the_corrected_rerun(corpus, tmp_path, capsys):
    """The first run records its settings, then finds no text in the corpus and writes no sample: its
    settings bind nobody, so the rerun with the right field is not refused as "made with other settings"."""
    body = tmp_path / "body.jsonl"
    body.write_text("".join(json.dumps({"id": r["id"], "title": r["title"], "body": r["text"]}) + "\n"
                            for r in map(json.loads, corpus.read_text().splitlines()[:40])))
    out = tmp_path / "run" / "s.jsonl"
    assert main(_args(body, out, 6, 256, 512)) == 2
    assert "no column 'text' in any record" in capsys.readouterr().err
    assert out.with_name(out.name + ".settings.json").exists() and not out.exists()
    assert main([*_args(body, out, 6, 256, 512), "synth.corpus.text_field=body"]) == 0
    assert len(out.read_text().splitlines()) == 6 and out.with_name(out.name + ".done").exists()
    assert not out.with_name("s.rejected.jsonl").exists()  # the first run's quarantine went with its settings
