"""Context assembly: exact lengths from per-piece counts, filler rejection on key fragments, gold
placement, short samples."""

from __future__ import annotations

import random

import pytest

from longcurate.synth.assemble import AssemblyError, LengthModel, assemble_long, assemble_short, truncate
from longcurate.synth.corpus import Document
from longcurate.synth.segment import build_pool

KEY = "the amber lighthouse of Veltmoor"


def _doc(i: int, with_key: bool = False) -> Document:
    sents = [f"Chapter {i} opens in the harbour town number {i}, where fishermen mend nets at dawn.",
             f"Record {i}: the council met {i % 7 + 2} times that winter and argued about the new bridge.",
             f"Traders from district {i * 3} brought salt, copper wire and dried figs to the market square.",
             f"By evening the bells of chapel {i} rang twice, and the ferry left for the northern islands.",
             f"Old maps of quarter {i} show a canal that was filled in during the great flood year."]
    if with_key:
        sents[2] = f"Visitors of year {i} still ask about {KEY} and its keeper."
    return Document(f"doc{i}", f"Doc {i}", " ".join(sents))


@pytest.fixture(scope="module")
def pool(tokenizer):
    docs = [_doc(i, with_key=(i % 3 == 0 and i > 0)) for i in range(60)]
    return build_pool(docs, tokenizer, segment_tokens=32, min_doc_tokens=10, progress=False)


def test_separator_tokens_measured_between_pieces(tokenizer):
    lm = LengthModel(tokenizer, "\n\n")
    assert lm.sep_tokens == 2  # "\n\n" alone is one token, between two sentences two


def test_length_is_exact_and_fillers_avoid_the_key(pool, tokenizer):
    lm = LengthModel(tokenizer)
    gold = [0]  # doc0 does not hold KEY; a third of the other documents do
    q, a = f'Quote the sentence in the context that contains the phrase "{KEY}".', "An answer."
    seg0 = pool.segments[0]
    rejected = 0
    for target in (400, 900, 1700, 2500):
        asm = assemble_long(pool, gold, q, a, [KEY], target, random.Random(target), lm)
        assert asm.length == lm.exact(asm.context, q, a)  # the reference: tokenize everything
        assert target - 16 - 2 <= asm.length <= target
        assert KEY.lower() not in asm.context.lower()
        (g,) = asm.gold
        assert asm.context[g.char_start:g.char_end] == seg0.text
        rejected += asm.filler_rejections
    assert rejected > 0


def test_gold_order_kept_and_positions_vary(pool, tokenizer):
    lm = LengthModel(tokenizer)
    gold = [pool.doc_segments[5][0], pool.doc_segments[2][0]]
    first_slots, last_seen = set(), False
    for seed in range(40):
        asm = assemble_long(pool, gold, "q", "a", [], 700, random.Random(seed), lm)
        a, b = asm.gold
        assert a.char_start < b.char_start and a.segment < b.segment
        assert asm.context[a.char_start:a.char_end] == pool.segments[gold[0]].text
        assert asm.context[b.char_start:b.char_end] == pool.segments[gold[1]].text
        first_slots.add(a.segment)
        last_seen |= b.segment == asm.num_segments - 1
        docs = {pool.segments[g].doc for g in gold}
        # fillers come from other documents only
        for d in docs:
            others = [s for s in pool.segments if s.doc == d and s.index != 0]
            assert not any(s.text in asm.context for s in others)
    assert 0 in first_slots and len(first_slots) > 3 and last_seen


def test_truncate_cuts_at_a_word_boundary(pool, tokenizer):
    seg = max(pool.segments, key=lambda s: s.n_tokens)
    text, n = truncate(tokenizer, seg, seg.n_tokens - 10)
    assert seg.text.startswith(text) and not text.endswith(" ")
    assert n == len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= seg.n_tokens - 10
    assert seg.text[len(text)] == " "  # the cut is between words
    assert truncate(tokenizer, seg, 5) is None  # too small a piece to be worth keeping


def test_short_sample_is_its_own_document(pool, tokenizer):
    lm = LengthModel(tokenizer)
    seg = pool.segments[pool.doc_segments[4][-1]]
    asm = assemble_short(pool, [pool.doc_segments[4][-1]], "q?", "a.", [seg.text[:20]], lm)
    assert asm.context == pool.docs[4].text
    (g,) = asm.gold
    assert asm.context[g.char_start:g.char_end] == seg.text and g.segment == seg.index
    assert asm.length == lm.exact(asm.context, "q?", "a.")


def test_short_multihop_sample_keeps_its_document_with_one_span_per_segment(pool, tokenizer):
    lm = LengthModel(tokenizer)
    segs = list(pool.doc_segments[5])
    assert len(segs) >= 2
    gold = segs[:2]
    asm = assemble_short(pool, gold, "q?", "a.", [pool.segments[g].text[:24] for g in gold], lm)
    assert asm.context == pool.docs[5].text and len(asm.gold) == 2
    for g, span in zip(gold, asm.gold):
        assert asm.context[span.char_start:span.char_end] == pool.segments[g].text
        assert span.segment == pool.segments[g].index
    with pytest.raises(AssemblyError, match="one document"):  # a short copy cannot join two documents
        assemble_short(pool, [pool.doc_segments[5][0], pool.doc_segments[6][0]], "q", "a", [], lm)


def test_ambiguous_key_is_refused(pool, tokenizer):
    lm = LengthModel(tokenizer)
    first, second = pool.doc_segments[3][0], pool.doc_segments[3][1]
    key = "harbour town number 3,"
    assert key in pool.segments[first].text and key not in pool.segments[second].text
    # a short sample whose key fragment also occurs in the rest of its document is ambiguous
    with pytest.raises(AssemblyError):
        assemble_short(pool, [second], "q", "a", [key], lm)
    # a long one whose gold segments repeat a key fragment outside the gold is ambiguous too
    gold = [first, pool.doc_segments[7][0]]
    fine = assemble_long(pool, gold, "q", "a", ["harbour town number 7,"], 300, random.Random(0), lm)
    assert fine.context.count("harbour town number 7,") == 1


def test_a_small_corpus_underfills_instead_of_looping(pool, tokenizer):
    lm = LengthModel(tokenizer)
    asm = assemble_long(pool, [0], "q", "a", [KEY], 1_000_000, random.Random(0), lm)
    assert asm.underfilled and asm.length < 1_000_000
    # every usable filler is in: all segments of the other documents that lack the key
    usable = [s for s in pool.segments if s.doc != pool.segments[0].doc and KEY.lower() not in s.text.lower()]
    assert asm.num_segments == len(usable) + 1
    assert asm.length == lm.exact(asm.context, "q", "a")
    assert not assemble_long(pool, [0], "q", "a", [KEY], 600, random.Random(0), lm).underfilled
