"""One reader for every input format: the same records from JSONL, JSON, Parquet and datasets folders."""

import json

import pytest

from longcurate.core.errors import UserError
from longcurate.core.jsonl import Rejects
from longcurate.core.reader import read_rows, source_digest, source_exists, source_files

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


def test_compressed_files_globs_and_folders_read_the_same(tmp_path):
    import gzip

    import zstandard

    lines = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    (tmp_path / "r.jsonl.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "r.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    (tmp_path / "r.json.gz").write_bytes(gzip.compress(json.dumps(RECORDS).encode()))
    for name in ("r.jsonl.gz", "r.jsonl.zst", "r.json.gz"):
        assert [r.record for r in read_rows(tmp_path / name)] == RECORDS, name
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "a.jsonl").write_text(json.dumps(RECORDS[0]) + "\n")
    (parts / "b.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in RECORDS[1:]).encode()))
    (parts / "notes.txt").write_text("not records")
    assert [r.record for r in read_rows(parts)] == RECORDS
    assert [r.record for r in read_rows(str(parts / "*.jsonl*"))] == RECORDS
    assert [f.name for f in source_files(str(parts / "*.jsonl*"))] == ["a.jsonl", "b.jsonl.gz"]
    assert source_digest(str(parts / "*.jsonl*")) and source_exists(str(parts / "*.jsonl*"))
    assert not source_exists(str(parts / "*.parquet"))
    with pytest.raises(FileNotFoundError, match="no file matches"):
        list(read_rows(str(parts / "*.parquet")))
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(lines)[:-12])
    with pytest.raises(UserError, match="cannot decompress"):
        list(read_rows(tmp_path / "cut.jsonl.gz"))


def test_json_lines_in_a_json_file(tmp_path):
    """Many datasets ship JSON Lines named `.json`: read as lines, bad lines quarantined with their line."""
    p = tmp_path / "lines.json"
    p.write_text("".join(json.dumps(r) + "\n" for r in RECORDS) + "{broken\n")
    with Rejects(tmp_path / "q.jsonl") as q:
        assert [r.record for r in read_rows(p, q)] == RECORDS
    assert json.loads((tmp_path / "q.jsonl").read_text())["line"] == 4
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n")  # one record, one line
    assert [r.record for r in read_rows(one)] == [{"messages": [{"role": "user", "content": "x"}]}]


def test_json_lists_are_streamed_not_read_whole(tmp_path):
    """A JSON list is parsed a record at a time: the same records as `json.load` (escapes, nesting,
    numbers cut at a refill boundary), syntax errors with their line, and memory about one record."""
    import tracemalloc

    from longcurate.core import json_stream

    def records(n: int) -> list[dict]:
        return [{"id": i, "text": "é\\\"}{ ,]" * (i % 7) + "x" * 50_000, "n": 12345.678e-3, "l": [1, {"a": None}]}
                for i in range(n)]

    def peak(path) -> int:
        tracemalloc.start()
        assert sum(1 for _ in read_rows(path)) > 0
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top

    paths = {}
    for n in (30, 120):
        paths[n] = tmp_path / f"big-{n}.json"
        paths[n].write_text(json.dumps(records(n), indent=2, ensure_ascii=False))
    old = json_stream.READ_CHARS
    try:
        json_stream.READ_CHARS = 997  # refills in the middle of strings, escapes and numbers
        assert [r.record for r in read_rows(paths[30])] == records(30)
        json_stream.READ_CHARS = 1 << 16
        small, large = peak(paths[30]), peak(paths[120])
    finally:
        json_stream.READ_CHARS = old
    assert large < 1.5 * small and large < paths[120].stat().st_size / 10, (small, large)
    bad = tmp_path / "bad.json"
    bad.write_text('[\n {"id": 1},\n {"id": 2,,}\n]')
    with pytest.raises(UserError, match=r"bad.json:3: invalid JSON"):
        list(read_rows(bad))
    (tmp_path / "scalar.json").write_text("42")
    with pytest.raises(UserError, match="expected a JSON list of records or a mapping"):
        list(read_rows(tmp_path / "scalar.json"))
