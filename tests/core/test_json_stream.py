"""`.json` record files are read one entry at a time (core/json_stream.py): the same entries as
`json.loads` of the whole file for lists and mappings, whatever the refill boundaries (a number cut by
a refill is read whole); errors with their line (memory: tests/core/test_reader.py)."""

from __future__ import annotations

import io
import json
import random

import pytest

from longcurate.core import json_stream
from longcurate.core.errors import UserError


def _records(n: int, rng: random.Random) -> list:
    return [{"id": i, "text": "é ü 中" * rng.randint(0, 30) + "\n" * rng.randint(0, 2), "x": rng.random(),
             "nested": [1, {"a": None, "b": [True, False]}], "n": 10 ** rng.randint(0, 12)} for i in range(n)]


@pytest.mark.parametrize("read_chars", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("shape", ["list", "mapping", "indented", "empty", "scalars"])
def test_entries_equal_json_loads(monkeypatch, read_chars, shape):
    monkeypatch.setattr(json_stream, "READ_CHARS", read_chars)  # (the module's own read size, made tiny)
    rng = random.Random(read_chars)
    records = _records(25, rng)
    text = {"list": json.dumps(records), "mapping": json.dumps({f"k{r['id']}": r for r in records}),
            "indented": json.dumps(records, indent=2, ensure_ascii=False), "empty": " [ \n ] ",
            "scalars": "[1, 22, 333.5, -4e3, 5e+10, true, null, \"s\"]"}[shape]
    want = json.loads(text)
    got = list(json_stream.iter_entries(io.StringIO(text), "r.json"))
    assert got == (list(want.items()) if isinstance(want, dict) else [(None, v) for v in want])


@pytest.mark.parametrize("text, line", [
    ('[{"a": 1},\n {"b": ', 2),
    ('[{"a": 1}\n\n{"b": 2}]', 3),
    ('[1] [2]', 1),
    ('{"a": 1, 2: 3}', 1),
    ('[1,\n 2.]', 2),
])
def test_errors_name_the_line_json_loads_names(monkeypatch, text, line):
    monkeypatch.setattr(json_stream, "READ_CHARS", 3)
    with pytest.raises(json.JSONDecodeError) as ref:
        json.loads(text)
    assert ref.value.lineno == line
    with pytest.raises(UserError, match=rf"bad.json:{line}: invalid JSON"):
        list(json_stream.iter_entries(io.StringIO(text), "bad.json"))

