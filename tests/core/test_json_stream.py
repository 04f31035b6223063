"""`.json` record files are read one entry at a time (core/json_stream.py): the same entries as
`json.loads` of the whole file for lists and mappings, whatever the block boundaries; the same errors
with their line; and the memory of a record, not of the file."""

from __future__ import annotations

import json
import random

import pytest

from longcurate.core import json_stream
from longcurate.core.errors import UserError
from longcurate.core.reader import read_rows


def _records(n: int, rng: random.Random) -> list:
    return [{"id": i, "text": "é ü 中" * rng.randint(0, 30) + "\n" * rng.randint(0, 2), "x": rng.random(),
             "nested": [1, {"a": None, "b": [True, False]}], "n": 10 ** rng.randint(0, 12)} for i in range(n)]


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("shape", ["list", "mapping", "indented", "empty", "scalars", "bom"])
def test_entries_equal_json_loads(tmp_path, monkeypatch, block, shape):
    monkeypatch.setattr(json_stream, "BLOCK", block)  # (the module's own read size, made tiny)
    rng = random.Random(block)
    records = _records(25, rng)
    text = {"list": json.dumps(records), "mapping": json.dumps({f"k{r['id']}": r for r in records}),
            "indented": json.dumps(records, indent=2, ensure_ascii=False), "empty": " [ \n ] ",
            "scalars": "[1, 22, 333.5, -4e3, true, null, \"s\"]", "bom": "\ufeff" + json.dumps(records[:3])}[shape]
    path = tmp_path / "r.json"
    path.write_text(text, encoding="utf-8")
    want = json.loads(text.lstrip("\ufeff"))
    got = list(json_stream.iter_json_entries(path))
    assert got == (list(want.items()) if isinstance(want, dict) else [(None, v) for v in want])


@pytest.mark.parametrize("text, line, message", [
    ('[{"a": 1},\n {"b": ', 2, "Expecting value"),
    ('[{"a": 1}\n\n{"b": 2}]', 3, "Expecting ',' delimiter"),
    ('[1] [2]', 1, "Extra data"),
    ('{"a": 1, 2: 3}', 1, "Expecting property name enclosed in double quotes"),
    ('', 1, "Expecting value"),
])
def test_errors_name_the_line_as_json_loads_does(tmp_path, monkeypatch, text, line, message):
    monkeypatch.setattr(json_stream, "BLOCK", 3)
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(json.JSONDecodeError) as ref:
        json.loads(text)
    assert (ref.value.lineno, ref.value.msg) == (line, message)
    with pytest.raises(UserError, match=rf"bad.json:{line}: invalid JSON: {message}"):
        list(json_stream.iter_json_entries(path))


def test_a_scalar_file_is_the_wrong_shape(tmp_path):
    (tmp_path / "s.json").write_text("42")
    with pytest.raises(UserError, match="expected a JSON list of records or a mapping"):
        list(read_rows(tmp_path / "s.json"))


def test_the_first_records_of_a_large_file_cost_a_block_not_the_file(tmp_path):
    from conftest import traced_peak

    path = tmp_path / "big.json"
    with open(path, "w") as f:
        f.write("[" + ",".join(json.dumps({"id": i, "text": "word " * 400}) for i in range(20_000)) + "]")
    assert path.stat().st_size > 40_000_000

    def first_ten():
        rows = read_rows(path)
        assert [next(rows).record["id"] for _ in range(10)] == list(range(10))

    assert traced_peak(first_ten) < 4 * json_stream.BLOCK
