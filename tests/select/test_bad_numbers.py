"""Numbers read from input are checked: a count, a gold offset or a score that is Infinity, NaN or a
string quarantines its record with the reason, and the rest is processed (score input, rank input);
ids found on one side of rank's input only are reported both ways."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.config import RunConfig
from longcurate.core.config import build
from longcurate.core.jsonl import Rejects
from longcurate.select.inputs import load_samples

from .conftest import make_samples, write_jsonl

BAD = {"Infinity": "Infinity", "NaN": "NaN", "a string": '"long"'}


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _raw(record: dict, key: str, literal: str) -> str:
    """`record` as a JSON line whose `key` holds a bare literal (JSON itself has no Infinity / NaN)."""
    return json.dumps({**record, key: "@@"}).replace('"@@"', literal)


@pytest.mark.parametrize("literal", BAD.values(), ids=BAD.keys())
def test_score_input_numbers(tmp_path, literal):
    recs = make_samples(5, seed=3, min_par=2, max_par=3)
    gold = dict(recs[3])
    gold_line = json.dumps(gold).replace(f'"char_start": {gold["gold"][0]["char_start"]}', f'"char_start": {literal}')
    lines = [recs[0], _raw(recs[1], "num_segments", literal), _raw(recs[2], "length", literal), gold_line, recs[4]]
    path = tmp_path / "in.jsonl"
    write_jsonl(path, lines)
    with Rejects(tmp_path / "rej.jsonl") as rej:
        got = load_samples(path, rej)
    assert [s.id for _, s in got] == ["s000", "s004"]
    rows = _read(tmp_path / "rej.jsonl")
    assert [(r["line"], r["id"], r["field"]) for r in rows] == [
        (2, "s001", "num_segments"), (3, "s002", "length"), (4, "s003", "gold[0].char_start")]
    assert all(r["reason"].startswith("not a non-negative whole number") for r in rows)


def test_score_input_numbers_end_to_end(tmp_path, tiny_folder):
    """Through `select score hmg`: the bad records are in the quarantine, the others are scored."""
    recs = make_samples(4, seed=4, min_par=2, max_par=3)
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [recs[0], _raw(recs[1], "num_segments", "Infinity"), _raw(recs[2], "length", "NaN"),
                      _raw(recs[3], "length", '"long"')])
    out = tmp_path / "hmg.jsonl"
    assert main(["select", "score", "hmg", "--input", str(inp), "--output", str(out), "--model", str(tiny_folder),
                 "--window", "256", "select.dtype=float32", "select.device=cpu"]) == 0
    assert [r["id"] for r in _read(out)] == ["s000"]
    assert {(r["id"], r["field"]) for r in _read(tmp_path / "hmg.rejected.jsonl")} == {
        ("s001", "num_segments"), ("s002", "length"), ("s003", "length")}


def _run_cfg(tmp_path: Path) -> RunConfig:
    return build(RunConfig, {"output_dir": str(tmp_path / "run")})


def _scores(tmp_path: Path, hmg_lines: list, cam_lines: list) -> tuple[Path, Path]:
    sel = tmp_path / "run" / "select"
    sel.mkdir(parents=True, exist_ok=True)
    write_jsonl(sel / "hmg.jsonl", hmg_lines)
    write_jsonl(sel / "cam.jsonl", cam_lines)
    return sel / "hmg.jsonl", sel / "cam.jsonl"


def _hmg(i: int, value: float | None = None) -> dict:
    return {"id": f"s{i}", "hmg": 0.1 * i if value is None else value, "ifd": 0.5, "ppl_b": 3.0, "n_tokens": 100 + i}


@pytest.mark.parametrize("literal", BAD.values(), ids=BAD.keys())
def test_rank_quarantines_unusable_scores_and_ranks_the_rest(tmp_path, literal):
    from longcurate.select.stage import run_rank

    hmg_lines = [_hmg(0), json.dumps(_hmg(1)).replace('"hmg": 0.1', f'"hmg": {literal}'), _hmg(2), _hmg(3),
                 json.dumps(_hmg(4)).replace('"n_tokens": 104', f'"n_tokens": {literal}')]
    cam_lines = [{"id": "s0", "cas": 0.2}, {"id": "s1", "cas": 0.3}, _raw({"id": "s2"}, "cas", literal),
                 {"id": "s9", "cas": 0.1}]  # s3 has no CAM record; s9 has no HMG record
    _scores(tmp_path, hmg_lines, cam_lines)
    stats = run_rank(_run_cfg(tmp_path))
    ranked = _read(tmp_path / "run/select/ranked.jsonl")
    assert sorted(r["id"] for r in ranked) == ["s0", "s2", "s3"]
    assert all(math.isfinite(r["score"]) for r in ranked)
    by_id = {r["id"]: r for r in ranked}
    assert by_id["s2"].get("cas_imputed") and by_id["s3"].get("cas_imputed") and by_id["s0"]["cas"] == 0.2
    rejected = {(r["id"], r["field"]): r["reason"] for r in _read(tmp_path / "run/select/ranked.rejected.jsonl")}
    assert set(rejected) == {("s1", "hmg"), ("s4", "n_tokens"), ("s2", "cas"), ("s1", "id"), ("s9", "id")}
    assert rejected[("s9", "id")].startswith("no usable HMG score")
    assert stats["quarantined"] == 5 and stats["cam_without_hmg"] == 2 and stats["hmg_without_cam"] == 2
    assert stats["cas_missing"] == 2


def test_rank_with_nothing_usable_is_an_error(tmp_path):
    from longcurate.core.errors import UserError
    from longcurate.select.stage import run_rank

    _scores(tmp_path, [_raw({"id": "a"}, "hmg", "NaN"), _raw({"id": "b"}, "hmg", "Infinity")], [])
    with pytest.raises(UserError, match=r"all 2 HMG records were quarantined \(hmg not finite: 2\)"):
        run_rank(_run_cfg(tmp_path))
    assert not (tmp_path / "run/select/ranked.jsonl").exists()
    assert not (tmp_path / "run/select/ranked.jsonl.done").exists()
