"""Segmentation with the target tokenizer (IN2: ~128-token pieces of a document).

Split a text on newlines (and on sentences when a paragraph is longer than the limit), accumulate
pieces until a segment reaches `segment_tokens`, merge a short leftover into the previous segment.
Each segment is tokenized once, on its own; contexts are later assembled from these token counts
and ids instead of re-tokenizing 32K-token strings (that is where synth's speed comes from).

A document longer than `max_doc_tokens` is cut to its first `max_doc_tokens` tokens, and cut by
characters before it is tokenized at all, so a 20 MB document costs no more memory than a capped
one. The pool samples by document (`SegmentPool.doc_for`), so a long document is not asked about
more often than a short one.
"""

from __future__ import annotations

import bisect
import random
from array import array
from dataclasses import replace
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from tqdm import tqdm

from longcurate.core.jsonl import RejectSink, reject
from longcurate.synth.corpus import Document
from longcurate.core.text import line_spans, sentence_spans


@dataclass(frozen=True, eq=False)
class Segment:
    doc: int  # position of the document in the pool
    doc_id: str
    title: str
    index: int  # position within its document
    text: str
    token_ids: array  # int32 ids of `text` tokenized on its own (4 bytes a token)
    char_start: int  # offsets of `text` inside the document text
    char_end: int

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)


@dataclass
class SegmentPool:
    """Every segment of the corpus, plus what the assembly needs to look things up fast."""

    docs: list[Document]
    segments: list[Segment]
    doc_segments: list[range] = field(default_factory=list)  # doc -> indices into `segments`
    truncated: int = 0  # documents cut to `max_doc_tokens`
    _lower: list[str] | None = None
    _multi: dict[int, list[int]] = field(default_factory=dict)

    def lower(self, i: int) -> str:
        """Lower-cased segment text (for the case-insensitive key-fragment check), computed once."""
        if self._lower is None:
            self._lower = [s.text.lower() for s in self.segments]
        return self._lower[i]

    def __len__(self) -> int:
        return len(self.segments)

    def docs_with(self, k: int) -> list[int]:
        """The documents with at least `k` segments (those that can give a k-segment question)."""
        if k not in self._multi:
            self._multi[k] = [d for d, r in enumerate(self.doc_segments) if len(r) >= k]
        return self._multi[k]

    def segment_of(self, doc: int, rng: random.Random) -> int:
        """A uniformly random segment of document `doc` (a pool index)."""
        r = self.doc_segments[doc]
        return r[rng.randrange(len(r))]


def count_tokens(tokenizer, text: str) -> int:
    """Tokens of `text` as is (a chat-formatted text already holds its special tokens)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def split_spans(text: str, starts: Sequence[int], limit: int) -> list[tuple[int, int, int]]:
    """Pieces of a document as (char_start, char_end, n_tokens): paragraphs, or sentences of a
    paragraph longer than `limit`, or token-boundary chunks of a sentence longer than `limit`.
    `starts` are the sorted start offsets of the document's tokens."""

    def ntok(s: int, e: int) -> int:
        return bisect.bisect_left(starts, e) - bisect.bisect_left(starts, s)

    pieces = []
    for ps, pe in line_spans(text):
        n = ntok(ps, pe)
        if n <= limit:
            pieces.append((ps, pe, n))
            continue
        for ss, se in sentence_spans(text, ps, pe):
            n = ntok(ss, se)
            if n <= limit:
                pieces.append((ss, se, n))
            else:
                pieces.extend(_chunk(text, starts, ss, se, limit))
    return pieces


def _chunk(text: str, starts: Sequence[int], s: int, e: int, limit: int) -> list[tuple[int, int, int]]:
    """A sentence longer than the limit, cut into pieces of <= limit tokens at word starts when possible."""
    lo, hi = bisect.bisect_left(starts, s), bisect.bisect_left(starts, e)
    out = []
    i = lo
    while i < hi:
        j = min(i + limit, hi)
        if j < hi:  # prefer a cut where the next token starts a word
            k = j
            while k > i + limit // 2 and not text[starts[k] - 1].isspace():
                k -= 1
            if k > i + limit // 2:
                j = k
        cs = starts[i] if i > lo else s
        ce = starts[j] if j < hi else e
        while ce > cs and text[ce - 1].isspace():
            ce -= 1
        while cs < ce and text[cs].isspace():
            cs += 1
        if ce > cs:
            out.append((cs, ce, j - i))
        i = j
    return out


def group_pieces(pieces: list[tuple[int, int, int]], limit: int) -> list[tuple[int, int]]:
    """Accumulate pieces until a segment reaches `limit` tokens; merge a short leftover into the
    previous segment (or keep it alone when it is all there is)."""
    segs: list[tuple[int, int]] = []
    cur_s, cur_e, cur_n = None, None, 0
    for s, e, n in pieces:
        if cur_s is None:
            cur_s = s
        cur_e, cur_n = e, cur_n + n
        if cur_n >= limit:
            segs.append((cur_s, cur_e))
            cur_s, cur_e, cur_n = None, None, 0
    if cur_s is not None:
        if segs:
            segs[-1] = (segs[-1][0], cur_e)
        else:
            segs.append((cur_s, cur_e))
    return segs


CHARS_PER_TOKEN_BOUND = 32  # a document is cut to max_doc_tokens x this many characters before tokenizing


@dataclass
class _Limits:
    segment_tokens: int
    min_doc: int
    max_doc: int | None


def build_pool(docs: Iterable[Document], tokenizer, segment_tokens: int = 128, min_doc_tokens: int | None = None,
               rejects: RejectSink | None = None, batch_size: int = 512, progress: bool = True,
               max_doc_tokens: int | None = None) -> SegmentPool:
    """Segment every document; documents shorter than `min_doc_tokens` (default: one segment) are
    quarantined with their token count, longer than `max_doc_tokens` cut to that many tokens."""
    limits = _Limits(segment_tokens, segment_tokens if min_doc_tokens is None else min_doc_tokens, max_doc_tokens)
    pool = SegmentPool(docs=[], segments=[])
    batch: list[tuple[Document, bool]] = []  # (document, already cut by characters)
    bar = tqdm(desc="segmenting", unit="doc", disable=not progress, mininterval=1.0)
    for doc in docs:
        precut = max_doc_tokens is not None and len(doc.text) > max_doc_tokens * CHARS_PER_TOKEN_BOUND
        if precut:
            doc = replace(doc, text=doc.text[:max_doc_tokens * CHARS_PER_TOKEN_BOUND])
        batch.append((doc, precut))
        if len(batch) >= batch_size:
            _add_batch(pool, batch, tokenizer, limits, rejects)
            bar.update(len(batch))
            batch = []
    if batch:
        _add_batch(pool, batch, tokenizer, limits, rejects)
        bar.update(len(batch))
    bar.close()
    return pool


def _cut(doc: Document, offsets: list, max_doc: int | None) -> tuple[Document, list, bool]:
    """The document cut to its first `max_doc` tokens (whole tokens, trailing space dropped)."""
    if max_doc is None or len(offsets) <= max_doc:
        return doc, offsets, False
    offsets = offsets[:max_doc]
    return replace(doc, text=doc.text[:offsets[-1][1]].rstrip()), offsets, True


def _add_batch(pool: SegmentPool, batch: list[tuple[Document, bool]], tokenizer, limits: _Limits,
               rejects: RejectSink | None) -> None:
    enc = tokenizer([d.text for d, _ in batch], add_special_tokens=False, return_offsets_mapping=True)
    kept: list[tuple[Document, list[tuple[int, int]]]] = []
    for (d, precut), offsets in zip(batch, enc["offset_mapping"]):
        if len(offsets) < limits.min_doc:
            reason = f"document shorter than one segment: {len(offsets)} tokens < {limits.min_doc}"
            reject(rejects, reason, file=d.file, line=d.line, record_id=d.doc_id)
            continue
        d, offsets, cut = _cut(d, list(offsets), limits.max_doc)
        pool.truncated += cut or precut
        starts = [o[0] for o in offsets]
        kept.append((d, group_pieces(split_spans(d.text, starts, limits.segment_tokens), limits.segment_tokens)))
    texts = [d.text[s:e] for d, spans in kept for s, e in spans]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    k = 0
    for d, spans in kept:
        doc_index = len(pool.docs)
        pool.docs.append(d)
        first = len(pool.segments)
        for j, (s, e) in enumerate(spans):
            pool.segments.append(Segment(doc=doc_index, doc_id=d.doc_id, title=d.title, index=j,
                                         text=texts[k], token_ids=array("i", ids[k]), char_start=s, char_end=e))
            k += 1
        pool.doc_segments.append(range(first, len(pool.segments)))
