"""IN2 multi-hop questions come from one text (issue 11): on synth output, a multi-hop sample's gold
spans are >= 2 distinct segments of ONE source document, each its own span in the long context, with
fillers from other documents; short copies include multi-hop questions and keep their document;
`synth.multihop_source: cross` keeps the one-segment-per-document variant; a corpus whose documents
are all single segments is refused with a clear error."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from longcurate.cli import build_parser
from longcurate.config import RunConfig, resolve_config
from longcurate.core.errors import UserError
from longcurate.synth.corpus import read_corpus
from longcurate.synth.pipeline import run_synth

SEP = "\n\n"
MULTIHOP_GENERATORS = ("template:order", "template:pair_recall")


def _cfg(corpus: Path, root: Path, *extra: str, n: int = 150) -> RunConfig:
    argv = ["synth", "run", "--corpus", str(corpus), "--num-samples", str(n), "--min-tokens", "1024",
            "--max-tokens", "2048", "--seed", "11", "--no-progress", f"output_dir={root}",
            "synth.multihop_fraction=0.4", "synth.short_fraction=0.2", *extra]
    return resolve_config(build_parser().parse_args(argv))


def _samples(cfg: RunConfig) -> list[dict]:
    return [json.loads(x) for x in cfg.layout().samples.read_text(encoding="utf-8").splitlines()]


def _gold_texts(s: dict) -> list[str]:
    return [s["context"][g["char_start"]:g["char_end"]] for g in s["gold"]]


def test_multihop_gold_spans_come_from_one_document(corpus, tmp_path, tokenizer):
    cfg = _cfg(corpus, tmp_path / "doc")
    stats = run_synth(cfg, progress=False, tokenizer=tokenizer)
    assert stats["complete"] and stats["in_file"] == 150
    docs = {d.doc_id: d.text for d in read_corpus(cfg.synth.corpus)}
    samples = _samples(cfg)
    multihop = [s for s in samples if s["source"]["generator"] in MULTIHOP_GENERATORS]
    long_mh = [s for s in multihop if s["kind"] == "multihop"]
    assert len(long_mh) >= 30
    for s in multihop:
        (doc_id,) = set(s["source"]["doc_ids"])  # one source document
        assert len(s["gold"]) == len(s["source"]["doc_ids"]) >= 2
        segments = s["source"]["doc_segments"]
        assert len(set(segments)) == len(segments) and segments == sorted(segments)  # distinct, in text order
        for text in _gold_texts(s):
            assert text in docs[doc_id]
        spans = sorted((g["char_start"], g["char_end"]) for g in s["gold"])
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # separate spans
    for s in long_mh:  # each gold segment is its own piece; every other piece is filler from other documents
        pieces = s["context"].split(SEP)
        assert len(pieces) == s["num_segments"]
        gold_slots = {g["segment"] for g in s["gold"]}
        assert len(gold_slots) == len(s["gold"])
        own = docs[s["source"]["doc_ids"][0]]
        for i, piece in enumerate(pieces):
            assert (piece in own) == (i in gold_slots), (s["id"], i)
    # the question still needs both spans: each quoted fragment lies in a different gold span
    for s in long_mh:
        gold = _gold_texts(s)
        for frag in s["source"]["key_fragments"]:
            assert sum(frag in g for g in gold) == 1


def test_short_copies_include_multihop_questions(corpus, tmp_path, tokenizer):
    cfg = _cfg(corpus, tmp_path / "short")
    run_synth(cfg, progress=False, tokenizer=tokenizer)
    docs = {d.doc_id: d.text for d in read_corpus(cfg.synth.corpus)}
    short = [s for s in _samples(cfg) if s["kind"] == "short"]
    assert abs(len(short) / 150 - 0.2) <= 0.02
    by_question = Counter(s["source"]["generator"] in MULTIHOP_GENERATORS for s in short)
    assert abs(by_question[True] / len(short) - 0.4) <= 0.1, by_question  # as among the long samples
    for s in short:
        (doc_id,) = set(s["source"]["doc_ids"])
        assert s["context"] == docs[doc_id]  # its original document is the context
        assert _gold_texts(s) == [s["context"][g["char_start"]:g["char_end"]] for g in s["gold"]]


def test_cross_document_multihop_is_kept_as_an_option(corpus, tmp_path, tokenizer):
    cfg = _cfg(corpus, tmp_path / "cross", "synth.multihop_source=cross", n=60)
    run_synth(cfg, progress=False, tokenizer=tokenizer)
    samples = _samples(cfg)
    multihop = [s for s in samples if s["source"]["generator"] in MULTIHOP_GENERATORS]
    assert multihop and all(s["kind"] == "multihop" for s in multihop)  # short copies stay fine-grained
    for s in multihop:
        assert len(set(s["source"]["doc_ids"])) == len(s["gold"]) >= 2


def test_documents_too_short_for_multihop_are_a_clear_error(tmp_path, tokenizer):
    corpus = tmp_path / "short-docs.jsonl"
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(30):
            text = (f"Item {i} of the inventory lists a brass compass, a folding knife and {i + 3} candles. "
                    f"The clerk of district {i} signed the list on a rainy Tuesday in the old customs house.")
            f.write(json.dumps({"id": f"d{i}", "title": f"Item {i}", "text": text}) + "\n")
    cfg = _cfg(corpus, tmp_path / "a", "synth.corpus.min_doc_tokens=16", n=20)
    with pytest.raises(UserError, match=r"2 segments of one document.*longest has 1.*multihop_source=cross"):
        run_synth(cfg, progress=False, tokenizer=tokenizer)
    assert not cfg.layout().samples.exists() or not cfg.layout().samples.read_text()
    ok = _cfg(corpus, tmp_path / "b", "synth.corpus.min_doc_tokens=16", "synth.multihop_fraction=0",
              "--min-tokens", "256", "--max-tokens", "512", n=20)
    assert run_synth(ok, progress=False, tokenizer=tokenizer)["in_file"] == 20
