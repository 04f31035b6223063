"""One reader for every input format: the same records from JSONL, JSON, Parquet and datasets folders."""

import json

import pytest

from longcurate.core.errors import UserError
from longcurate.core.jsonl import Rejects
from longcurate.core.reader import read_rows, source_files

RECORDS = [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 3}]


def _write_all(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    (tmp_path / "r.json").write_text(json.dumps(RECORDS))
    pq.write_table(pa.Table.from_pylist(RECORDS), tmp_path / "r.parquet")
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(tmp_path / "ds"))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(RECORDS)}).save_to_disk(str(tmp_path / "dd"))


def test_every_format_gives_the_same_records(tmp_path):
    _write_all(tmp_path)
    for name in ("r.jsonl", "r.json", "r.parquet", "ds", "dd"):
        rows = list(read_rows(tmp_path / name))
        assert [r.record for r in rows] == RECORDS, name
        assert [r.line for r in rows] == [1, 2, 3], name
    assert len(source_files(tmp_path / "ds")) >= 2


def test_bad_lines_are_quarantined_with_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "a"}\nnot json\n[1]\n{"id": "d"}\n')
    with Rejects(tmp_path / "q.jsonl") as q:
        assert [r.record["id"] for r in read_rows(p, q)] == ["a", "d"]
    lines = [json.loads(x) for x in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [(x["line"], x["reason"].split(":")[0]) for x in lines] == [(2, "invalid JSON"), (3, "not a JSON object")]


def test_json_mapping_keeps_its_keys(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"k1": {"x": 1}, "k2": {"x": 2}}))
    assert [(r.key, r.record) for r in read_rows(p)] == [("k1", {"x": 1}), ("k2", {"x": 2})]


def test_missing_inputs_and_hub_ids_offline(tmp_path):
    with pytest.raises(FileNotFoundError, match="allow_download"):
        list(read_rows("THUDM/LongAlign-10k"))
    with pytest.raises(FileNotFoundError):
        list(read_rows(tmp_path / "nope.jsonl"))
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="unsupported"):
        list(read_rows(tmp_path / "x.csv"))
