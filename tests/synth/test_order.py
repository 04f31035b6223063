"""A finished samples file is put in index order, streaming, whatever order its samples came in."""

from __future__ import annotations

import json

from longcurate.synth.order import late_lines, sort_by_index
from longcurate.synth.plan import index_of


def _write(path, ids):
    path.write_text("".join(json.dumps({"id": f"in2-{i:06d}", "x": i}) + "\n" for i in ids))


def test_late_samples_are_merged_into_place(tmp_path):
    p = tmp_path / "s.jsonl"
    _write(p, [0, 1, 3, 4, 7, 2, 5, 6])  # 2, 5 and 6 came in a later run
    assert sorted(i for i, _ in late_lines(p, index_of).values()) == [2, 5, 6]
    assert sort_by_index(p, index_of) == 3
    assert [json.loads(x)["x"] for x in p.read_text().splitlines()] == list(range(8))
    before = p.read_bytes()
    assert sort_by_index(p, index_of) == 0 and p.read_bytes() == before  # in order: untouched
    assert index_of("heldout-1234567") == 1234567  # past six digits the ids no longer sort as text
