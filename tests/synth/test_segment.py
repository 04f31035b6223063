"""Segmentation: paragraphs accumulate to the limit, long paragraphs split on sentences, a short
leftover merges into the previous segment, and every segment is a verbatim slice of its document."""

from __future__ import annotations

from pathlib import Path

from longcurate.core.jsonl import Rejects
from longcurate.synth.corpus import Document
from longcurate.synth.segment import build_pool, count_tokens
from longcurate.core.text import sentence_spans


def _sent(i, words=12):
    return f"Sentence number {i} talks about " + " ".join(f"topic{i}x{j}" for j in range(words)) + "."


def test_sentence_spans_skip_abbreviations():
    text = "Dr. Smith met J. R. R. Tolkien in 1950. They talked! Was it fun? Yes (mostly). end"
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == ["Dr. Smith met J. R. R. Tolkien in 1950.", "They talked!", "Was it fun?", "Yes (mostly). end"]


def test_segments(tokenizer, tmp_path):
    limit = 64
    paras = [" ".join(_sent(10 * p + k, 3) for k in range(2)) for p in range(6)]  # short paragraphs
    long_para = " ".join(_sent(100 + k) for k in range(12))  # far over the limit: split on sentences
    text = "\n".join(paras) + "\n\n" + long_para + "\nTail."
    doc = Document("d1", "T", text)
    tiny = Document("d2", "T2", "Too short.", file="c.jsonl", line=7)
    rejects = Rejects(tmp_path / "r.jsonl")
    pool = build_pool([doc, tiny], tokenizer, segment_tokens=limit, rejects=rejects, progress=False)
    rejects.close()
    assert rejects.total == 1 and "shorter than one segment" in (tmp_path / "r.jsonl").read_text()
    assert len(pool.docs) == 1 and len(pool.segments) >= 4
    segs = pool.segments
    for i, s in enumerate(segs):
        assert s.text == text[s.char_start:s.char_end]
        assert s.index == i and s.doc_id == "d1" and s.title == "T"
        assert list(s.token_ids) == tokenizer(s.text, add_special_tokens=False)["input_ids"]
        assert s.n_tokens >= limit - 2  # each reaches the limit (boundary tokens may merge by one or two)
    # no leftover: the last segment holds the tail, merged into it
    assert segs[-1].text.endswith("Tail.")
    assert count_tokens(tokenizer, "Tail.") < limit
    # the long paragraph was split: no segment is much longer than limit + one sentence
    longest_sentence = max(count_tokens(tokenizer, _sent(100 + k)) for k in range(12))
    assert max(s.n_tokens for s in segs[:-1]) <= limit + longest_sentence + 2
    # segments are disjoint and in document order
    assert all(a.char_end <= b.char_start for a, b in zip(segs, segs[1:]))


def test_overlong_sentence_is_chunked(tokenizer):
    text = " ".join(f"word{i}" for i in range(400))  # one 'sentence' of ~800 tokens
    pool = build_pool([Document("d", "", text)], tokenizer, segment_tokens=100, progress=False)
    assert len(pool.segments) >= 5
    assert all(s.text == text[s.char_start:s.char_end] for s in pool.segments)
    assert all(s.n_tokens <= 200 for s in pool.segments)


def test_min_doc_tokens(tokenizer):
    doc = Document("d", "", "A short but real document about rivers and their many bridges.")
    assert len(build_pool([doc], tokenizer, 128, min_doc_tokens=5, progress=False).segments) == 1
    assert len(build_pool([doc], tokenizer, 128, rejects=Rejects(Path("/dev/null")), progress=False).segments) == 0
