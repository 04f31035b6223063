import json
import os

import pytest

from longcurate.core.jsonl import (Rejects, ResumableWriter, atomic_open, dumps, read_jsonl,
                                   rejected_path, write_jsonl)
from longcurate.core.reader import read_parsed
from longcurate.core.records import Sample


def test_rejected_path():
    assert rejected_path("out/samples.jsonl").name == "samples.rejected.jsonl"


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    p = tmp_path / "a.jsonl"
    write_jsonl(p, [{"id": 1}])
    with pytest.raises(RuntimeError):
        with atomic_open(p) as f:
            f.write("partial")
            raise RuntimeError("boom")
    assert p.read_text() == '{"id": 1}\n'
    assert [x.name for x in tmp_path.iterdir()] == ["a.jsonl"]  # no temp file left


def test_read_jsonl_quarantines_bad_lines(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": 1}\n\xff\xfe bad\n{"id": 2\n[1, 2]\n\n{"id": 3}\n')
    rej = Rejects(tmp_path / "out.rejected.jsonl")
    got = [(n, o["id"]) for n, o in read_jsonl(src, rej)]
    rej.close()
    assert got == [(1, 1), (6, 3)]
    lines = [json.loads(x) for x in (tmp_path / "out.rejected.jsonl").read_text().splitlines()]
    assert [(x["line"], x["reason"].split(":")[0]) for x in lines] == [
        (2, "not UTF-8"), (3, "invalid JSON"), (4, "not a JSON object")]
    assert all(x["file"] == str(src) for x in lines)
    assert rej.total == 3


def test_read_jsonl_without_quarantine_names_file_and_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"in.jsonl:2: invalid JSON"):
        list(read_jsonl(src))


def test_read_parsed_names_field(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"id": "a", "context": "c", "instruction": "q", "response": "r"},
            {"id": "b", "context": "c", "instruction": "q", "response": "  "},
            {"id": "c", "context": "c", "instruction": "q"}]
    src.write_text("".join(dumps(r) + "\n" for r in rows))
    rej = Rejects(tmp_path / "r.jsonl")
    good = [s.id for _, s in read_parsed(src, Sample.from_dict, rej)]
    rej.close()
    assert good == ["a"]
    bad = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(b["id"], b["field"], b["line"]) for b in bad] == [("b", "response", 2), ("c", "response", 3)]
    assert rej.counts == {"empty response": 1, "missing or not a string": 1}


def test_resumable_writer_skips_done_and_drops_torn_line(tmp_path):
    p = tmp_path / "parts.jsonl"
    with ResumableWriter(p) as w:
        assert w.write({"id": "a", "v": 1})
        assert w.write({"id": "b", "v": 2})
    with open(p, "a") as f:
        f.write('{"id": "c", "v"')  # a crash mid-line
    with ResumableWriter(p) as w:
        assert "a" in w and "b" in w and "c" not in w
        assert not w.write({"id": "a", "v": 1})
        assert w.write({"id": "c", "v": 3})
    ids = [json.loads(x)["id"] for x in p.read_text().splitlines()]
    assert ids == ["a", "b", "c"]


def test_atomic_files_get_normal_permissions(tmp_path):
    p = tmp_path / "perm.jsonl"
    write_jsonl(p, [{"id": 1}])
    mask = os.umask(0)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_file_digest(tmp_path):
    from longcurate.core.jsonl import file_digest, write_jsonl

    out = tmp_path / "x.jsonl"
    assert file_digest(out) is None
    write_jsonl(out, [{"id": "1"}])
    d = file_digest(out)
    assert d is not None and len(d) == 16
    write_jsonl(out, [{"id": "2"}])
    assert file_digest(out) != d


def test_recorded_rejects_replay_into_a_quarantine(tmp_path):
    from longcurate.core.jsonl import DiscardRejects, RecordedRejects

    rec = RecordedRejects()
    rec.add("bad: x", file="f", line=3, field_name="id", record_id="a")
    DiscardRejects().add("ignored", file="f")
    with Rejects(tmp_path / "q.jsonl") as q:
        rec.replay(q)
    assert json.loads((tmp_path / "q.jsonl").read_text()) == {"file": "f", "line": 3, "field": "id", "id": "a",
                                                            "reason": "bad: x"}


def test_a_byte_order_mark_on_the_first_line_is_tolerated(tmp_path):
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + b'{"id": "a"}\n{"id": "b"}\n')
    assert [obj["id"] for _, obj in read_jsonl(p)] == ["a", "b"]


def _strict(text: str):
    """JSON as any other language reads it: a bare NaN or Infinity is an error."""
    def bad(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=bad)


def test_no_bare_nan_or_infinity_in_any_json_written(tmp_path, caplog):
    """One rule for every writer: a non-finite number is written as null, and the file and place are
    reported once per file."""
    from longcurate.core.jsonl import write_json

    nan, inf = float("nan"), float("inf")
    rec = {"id": "a", "score": nan, "per": [1.0, inf, -inf], "nested": {"x": nan}, "ok": 0.5}
    caplog.set_level("WARNING", logger="longcurate.jsonl")
    write_json(tmp_path / "r.json", rec)
    write_jsonl(tmp_path / "r.jsonl", [rec, {**rec, "id": "b"}])
    with ResumableWriter(tmp_path / "w.jsonl") as w:
        w.write(rec)
    with Rejects(tmp_path / "q.rejected.jsonl") as rej:
        rej.add("bad number", file="in.jsonl", line=1, raw=rec)
    expected = {"id": "a", "score": None, "per": [1.0, None, None], "nested": {"x": None}, "ok": 0.5}
    assert _strict((tmp_path / "r.json").read_text()) == expected
    assert [_strict(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()] == [expected, {**expected, "id": "b"}]
    assert _strict((tmp_path / "w.jsonl").read_text()) == expected
    assert _strict((tmp_path / "q.rejected.jsonl").read_text())["raw"] == expected
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 4  # once per file, though r.jsonl had two such records
    assert warned[0] == f"{tmp_path / 'r.json'}: 4 non-finite number(s) (NaN or Infinity) written as null, at " \
                        "$.score, $.per[1], $.per[2], $.nested.x"
    assert dumps({"a": 1.5}) == '{"a": 1.5}'  # finite data: unchanged bytes


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    """The OS error of a write on a full disk carries no file name; the writers add theirs."""
    import errno

    from longcurate.core.jsonl import write_json

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    def quarantine(path):
        with Rejects(path) as rej:
            rej.add("bad", file="in.jsonl", line=1)

    monkeypatch.setattr(os, "fsync", full)
    writers = {"x.json": lambda p: write_json(p, {"a": 1}), "y.jsonl": lambda p: write_jsonl(p, [{"a": 1}]),
               "z.jsonl": lambda p: ResumableWriter(p).write({"id": 1}),  # fsync after every record
               "q.rejected.jsonl": quarantine}
    for name, write in writers.items():
        path = tmp_path / name
        with pytest.raises(OSError) as info:
            write(path)
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(path), name
