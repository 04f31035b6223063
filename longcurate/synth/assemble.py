"""Context assembly: gold segment(s) at uniformly random positions among filler segments from other
documents, up to a target token length; or the gold segments' own short document (`kind: short`, for a
fine-grained or a same-document multi-hop question).

Lengths are counted, not re-tokenized: a sample's token count is the frame (chat template, FILM
preamble, instruction, response; tokenized once per sample) plus each piece's own token count plus
the separators. `tests/synth` checks this against a full tokenization (within 1%).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

from longcurate.core.prompts import chat_text, messages_for
from longcurate.core.records import GoldSpan
from longcurate.synth.segment import Segment, SegmentPool, count_tokens

_SENTINEL = "\u0000CONTEXT\u0000"
MIN_PIECE_TOKENS = 16  # a truncated last filler shorter than this is left out


class AssemblyError(ValueError):
    """This QA pair cannot be placed (e.g. its key fragment occurs outside the gold segments)."""


@dataclass
class LengthModel:
    """Token counts of chat-formatted samples from the pieces' own counts."""

    tokenizer: object
    separator: str = "\n\n"
    sep_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        # measured between two pieces, since BPE merges differ there ("\n\n" alone is one token here,
        # between sentences it is two)
        a, b = "It ended in 1900.", "The next one began."
        n = count_tokens(self.tokenizer, a + self.separator + b)
        self.sep_tokens = n - count_tokens(self.tokenizer, a) - count_tokens(self.tokenizer, b)

    def frame(self, instruction: str, response: str) -> tuple[int, int]:
        """Tokens before and after the context in the full chat-formatted text."""
        text = chat_text(self.tokenizer, messages_for(_SENTINEL, instruction, response))
        at = text.index(_SENTINEL)
        return (count_tokens(self.tokenizer, text[:at]),
                count_tokens(self.tokenizer, text[at + len(_SENTINEL):]))

    def exact(self, context: str, instruction: str, response: str) -> int:
        """The reference: tokenize the whole chat-formatted text."""
        return count_tokens(self.tokenizer, chat_text(self.tokenizer, messages_for(context, instruction, response)))


@dataclass
class Assembled:
    context: str
    gold: list[GoldSpan]
    num_segments: int
    length: int
    filler_rejections: int = 0  # fillers dropped because they contain a key fragment
    underfilled: bool = False  # the corpus ran out of usable fillers before the target length


def assemble_long(pool: SegmentPool, gold: Sequence[int], instruction: str, response: str,
                  key_fragments: Sequence[str], target: int, rng: random.Random, lm: LengthModel) -> Assembled:
    """Fill to `target` tokens (the full chat-formatted sample) with random segments of other
    documents that contain no key fragment (case-insensitive); put the gold segments at uniformly
    random positions, keeping their request order (multi-hop answers rely on it)."""
    keys = [k.lower() for k in key_fragments if k]
    pre, post = lm.frame(instruction, response)
    fill = _draw_fillers(pool, gold, keys, target - pre - post, rng, lm)
    rng.shuffle(fill.pieces)  # the truncated filler must not always sit last
    m = len(fill.pieces) + len(gold)
    slots = set(rng.sample(range(m), len(gold)))
    pieces: list[str] = []
    spans: list[GoldSpan] = []
    pos = total = 0
    it_fill, it_gold = iter(fill.pieces), iter(gold)
    for slot in range(m):
        if slot:
            pos += len(lm.separator)
        if slot in slots:
            seg = pool.segments[next(it_gold)]
            text, n = seg.text, seg.n_tokens
            spans.append(GoldSpan(slot, pos, pos + len(text)))
        else:
            text, n = next(it_fill)
        pieces.append(text)
        pos += len(text)
        total += n
    context = lm.separator.join(pieces)
    _check_unique(context, [pool.segments[g].text for g in gold], keys)
    length = pre + total + lm.sep_tokens * (m - 1) + post
    return Assembled(context, spans, m, length, fill.rejected, fill.underfilled)


@dataclass
class _Fillers:
    pieces: list[tuple[str, int]] = field(default_factory=list)  # (text, tokens), in draw order
    rejected: int = 0  # drawn but left out: they contain a key fragment
    underfilled: bool = False  # the usable segments ran out before the budget was filled


def _draw_fillers(pool: SegmentPool, gold: Sequence[int], keys: list[str], budget: int, rng: random.Random,
                  lm: LengthModel) -> _Fillers:
    """Random segments of documents other than the gold ones, without a key fragment, until
    `budget` context tokens are used (the last one cut to fit, when at least MIN_PIECE_TOKENS remain)."""
    sep_n = lm.sep_tokens
    gold_docs = {pool.segments[g].doc for g in gold}
    cur = sum(pool.segments[g].n_tokens for g in gold) + sep_n * (len(gold) - 1)
    out = _Fillers()
    seen = set(gold)
    n_pool = len(pool)
    draws, max_draws = 0, 20 * n_pool + 1000
    while draws < max_draws:
        room = budget - cur - sep_n
        if room < MIN_PIECE_TOKENS:
            return out
        if len(seen) >= n_pool:
            out.underfilled = True  # every segment tried
            return out
        draws += 1
        j = rng.randrange(n_pool)
        if j in seen:
            continue
        seen.add(j)
        seg = pool.segments[j]
        if seg.doc in gold_docs:
            continue
        if keys:
            low = pool.lower(j)
            if any(k in low for k in keys):
                out.rejected += 1
                continue
        piece = (seg.text, seg.n_tokens) if seg.n_tokens <= room else truncate(lm.tokenizer, seg, room)
        if piece is not None:
            out.pieces.append(piece)
            cur += sep_n + piece[1]
        if seg.n_tokens > room:
            return out
    out.underfilled = True  # every draw spent: too few segments that may serve as fillers
    return out


def assemble_short(pool: SegmentPool, gold: Sequence[int], instruction: str, response: str,
                   key_fragments: Sequence[str], lm: LengthModel) -> Assembled:
    """The QA pair with its own (short) document as the context: the gold segments, all of one
    document, stay where they are in it."""
    segs: list[Segment] = [pool.segments[g] for g in gold]
    if len({s.doc for s in segs}) != 1:
        raise AssemblyError("a short sample keeps one document: its gold segments must all come from it")
    doc = pool.docs[segs[0].doc]
    keys = [k.lower() for k in key_fragments if k]
    _check_unique(doc.text, [s.text for s in segs], keys)
    spans = [GoldSpan(s.index, s.char_start, s.char_end) for s in segs]
    return Assembled(doc.text, spans, len(pool.doc_segments[segs[0].doc]), lm.exact(doc.text, instruction, response))


def _check_unique(context: str, gold_texts: list[str], keys: list[str]) -> None:
    """Every key fragment occurs in the context exactly as often as in the gold segments."""
    if not keys:
        return
    low = context.lower()
    gold_low = [t.lower() for t in gold_texts]
    for k in keys:
        if low.count(k) != sum(g.count(k) for g in gold_low):
            raise AssemblyError(f"ambiguous: key fragment {k!r} also occurs outside the gold segments")


def truncate(tokenizer, seg: Segment, max_tokens: int) -> tuple[str, int] | None:
    """The segment's first words that fit in `max_tokens` tokens, cut at a word boundary, with their count."""
    head = tokenizer.decode(list(seg.token_ids[:max_tokens]))
    if not seg.text.startswith(head):  # a decoder that normalises text: cut by characters instead
        head = seg.text[:max(1, len(seg.text) * max_tokens // max(1, seg.n_tokens))]
    cut = head.rfind(" ")
    text = head[:cut].rstrip() if cut > 0 else ""
    while text:
        n = count_tokens(tokenizer, text)
        if n <= max_tokens:
            return (text, n) if n >= MIN_PIECE_TOKENS else None
        cut = text.rfind(" ")
        text = text[:cut].rstrip() if cut > 0 else ""
    return None
