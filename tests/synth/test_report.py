"""`synth report` on files synth did not write: fields the records lack are reported as absent,
never invented (LongAlign-10k records are not `kind: fine`, `length: 0`)."""

from __future__ import annotations

import gzip
import json

from longcurate.synth.report import format_report, summarize

LONGALIGN = [{"messages": [{"role": "user", "content": f"doc {i}\n\nq?"}, {"role": "assistant", "content": "a"}]}
             for i in range(3)]


def test_longalign_records_have_an_unknown_kind_and_no_length(tmp_path):
    path = tmp_path / "la.jsonl.gz"  # any container the readers read
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in LONGALIGN).encode()))
    s = summarize(path)
    assert (s.n, dict(s.kinds), s.lengths, s.no_length) == (3, {"unknown": 3}, [], 3)
    text = format_report(s, str(path))
    assert "unknown" in text and "fine" not in text
    assert "length: absent in 3 of 3 samples" in text and "length deciles" not in text


def test_synth_records_are_reported_as_they_are(tmp_path):
    recs = [{"id": f"s{i}", "kind": "fine", "length": 100 * (i + 1), "context": "x" * 100, "gold": [],
             "source": {"generator": "template:cloze"}} for i in range(4)]
    recs.append({"id": "half", "kind": "short", "context": "y"})  # no length: counted apart
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs) + "not json\n")
    s = summarize(path)
    assert (dict(s.kinds), s.lengths, s.no_length, s.bad_lines) == ({"fine": 4, "short": 1}, [100, 200, 300, 400], 1, 1)
    assert "length deciles (tokens, 4 samples)" in format_report(s)
