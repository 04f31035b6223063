"""`longcurate select audit` end to end on a tiny random model: from nothing (synth runs first) to the
report with its criteria and pass / fail marks, a rerun that redoes nothing, a refused change of the
pool, and LongAlign-format input (no gold: natural / absent / wrong)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.core.errors import SettingsChanged

from .conftest import write_jsonl
from .test_longalign import longalign_records

FAST = ["select.dtype=float32", "select.device=cpu", "select.max_segments=4", "select.audit.bootstrap=100",
        "select.audit.margin=16"]


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def audited(tmp_path_factory, tiny_folder):
    run = tmp_path_factory.mktemp("audit") / "run"
    argv = ["select", "audit", f"output_dir={run}", f"model={tiny_folder}", "synth.num_samples=30",
            "synth.min_tokens=768", "synth.max_tokens=1024", "synth.corpus.min_doc_tokens=64", "synth.corpus.limit=1500", "select.window=384",
            "--base-samples", "6", *FAST]
    assert main(argv) == 0
    return run, argv


def test_audit_from_nothing_writes_the_report_with_criteria(audited):
    run, _ = audited
    assert (run / "samples.jsonl.done").exists()  # synth ran first
    pool = _read(run / "audit" / "pool.jsonl")
    types = [r["planted"]["type"] for r in pool]
    assert len(pool) == 4 * len({r["planted"]["base"] for r in pool}) and set(types) == {"far", "local", "absent", "wrong"}
    report = json.loads((run / "audit" / "report.json").read_text())
    assert report["types"] == ["far", "local", "absent", "wrong"] and report["reference"] == "far"
    assert report["k"] == len(pool) // 4
    assert {"hmg-ppl", "hmg-log", "cas-cos", "cas-kl", "cas-js", "cas-cos-T0.25", "cas-cos-T4", "cas-cos-Trelease",
            "gateau-rank", "gateau-paper", "ifd", "perplexity", "length", "random"} == set(report["figures"])
    assert len(report["criteria"]) == 11 and all(r["passed"] in (True, False) for r in report["criteria"])
    md = (run / "audit" / "report.md").read_text()
    head, _, rest = md.partition("## Pass criteria")
    assert rest and "## Share of each type in the top k" in rest
    criteria = rest.split("## Share")[0]
    assert criteria.count("**PASS**") + criteria.count("**FAIL**") == 11
    assert (run / "audit" / "audit.png").stat().st_size > 0
    for name, fig in report["figures"].items():
        assert sum(fig["top_k"].values()) == pytest.approx(1.0), name
    # the length of far and local variants of one sample differ at most by a few boundary tokens
    assert report["figures"]["length"]["auroc"]["local"] == pytest.approx(0.5, abs=0.25)


def test_a_rerun_redoes_nothing_and_a_changed_pool_is_refused(audited, capsys):
    run, argv = audited
    before = {p: p.stat().st_mtime_ns for p in (run / "audit").rglob("*") if p.is_file() and ".lock" not in p.name}
    assert main(argv) == 0
    assert "audit criteria" in capsys.readouterr().out  # printed again from the recorded stats
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before
    assert main([*argv, "select.audit.margin=8"]) == 2  # the pool decides the scores: refused, not mixed


def test_audit_of_longalign_records_has_no_position_types(tmp_path, tiny_folder):
    data = tmp_path / "longalign.jsonl"
    write_jsonl(data, longalign_records(8, seed=3))
    run = tmp_path / "run"
    assert main(["select", "audit", f"output_dir={run}", f"model={tiny_folder}", "--input", str(data),
                 "select.window=256", "--base-samples", "8", *FAST]) == 0
    report = json.loads((run / "audit" / "report.json").read_text())
    assert report["types"] == ["natural", "absent", "wrong"] and report["reference"] == "natural"
    assert set(report["figures"]["hmg-ppl"]["auroc"]) == {"absent", "wrong"}
    marks = {r["criterion"]: r["passed"] for r in report["criteria"] if r["role"] == "gateau"}
    assert marks["`far` share of the top k >= 60%"] is None and marks["`absent` share of the top k <= 15%"] in (True, False)


def test_audit_needs_a_window_for_far_and_local(tmp_path, tiny_folder):
    data = tmp_path / "x.jsonl"
    write_jsonl(data, longalign_records(4))
    assert main(["select", "audit", f"output_dir={tmp_path}", f"model={tiny_folder}", "--input", str(data),
                 "select.window=null", "select.rope_scaling={rope_type: dynamic, factor: 2.0}", *FAST]) == 2


def test_missing_input_is_a_user_error(tmp_path, tiny_folder):
    assert main(["select", "audit", f"output_dir={tmp_path}", f"model={tiny_folder}",
                 "--input", str(tmp_path / "nope.jsonl"), *FAST]) == 2


def test_refused_change_is_settings_changed(audited):
    from longcurate.config import RunConfig
    from longcurate.core.config import apply_overrides, build
    from longcurate.select.audit import pool_spec
    from longcurate.core.runner import run_step

    run, argv = audited
    cfg = build(RunConfig, apply_overrides({}, [a for a in argv if "=" in a and not a.startswith("-")]
                                           + ["select.audit.base_samples=5"]))
    with pytest.raises(SettingsChanged, match="base_samples"):
        run_step(pool_spec(cfg, run / "samples.jsonl"), lambda _: {})


@pytest.mark.parametrize("name, window, pool", [("audit-cpu", 512, 160), ("audit-gpu", 4096, 128)])
def test_the_audit_configs_resolve(name, window, pool):
    """The bundled audit configs resolve (the GPU one's models are the user's to download: only this is
    checked) with the window far / local are placed against and the pool size they promise."""
    from longcurate.cli import build_parser
    from longcurate.core.cli import parse_command_line, resolve_config
    from longcurate.select.audit_pool import audit_window

    cfg = resolve_config(parse_command_line(build_parser(), ["select", "audit", name]))
    assert audit_window(cfg) == window and cfg.select.audit.base_samples * 4 == pool
    assert cfg.select.audit.criteria.far_top_share_min == 0.60 and cfg.select.cam
