"""Planted sample types: samples whose relation to θ_A's view and to their answer is known by
construction, so a selection score can be checked against them before anything is trained (`select
audit`) and a pool can hold something to filter (`synth.planted`).

    far      correct answer; all gold evidence further from the end of the prompt than θ_A's window
    local    correct answer; all gold evidence inside θ_A's window (no long-range dependency)
    absent   the question and answer of another sample (built from other documents): the answer and
             the question's key fragments occur nowhere in this context
    wrong    the sample's own question with another same-type sample's answer: the context
             contradicts it
    natural  the sample as synth made it (the reference type for data without gold spans)

`far` and `local` *move* a sample's gold segment(s) instead of selecting samples by where synth put
them: the two variants of one sample then differ only in the evidence's position (same text, length,
question and answer), whereas selecting by natural position would mix position with what correlates
with it (which samples have long contexts, where fillers were cut). The context is cut at its
separators ("\\n\\n" between synth's ~128-token segments) into units; the gold spans, which must be
whole units, are taken out and put back in their order at unit boundaries drawn uniformly from those
that leave them at least `margin` tokens beyond (far) or inside (local) the window.

Positions are counted in context tokens from the end of the context, since θ_A's window keeps the
prompt's other parts (template, instruction, response) and the last context tokens that fit:
θ_A sees `window − (prompt tokens other than the context)` context tokens (the sample's *view*). A
`View` tells both numbers for a sample; `ChatView` counts them with the chat template (select's
default prompt format); `select audit` passes a view built on select's own prompt builder, so its
pool is placed with exactly the tokens θ_A is scored on. The pool is assembled in `planted_pool`.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Protocol

from longcurate.core.prompts import chat_text, messages_for
from longcurate.core.records import GoldSpan, Sample

PLANTED_TYPES = ("far", "local", "absent", "wrong", "natural")
POSITION_TYPES = ("far", "local")  # need gold spans
DONOR_TYPES = ("absent", "wrong")  # take another sample's answer
SEPARATOR = "\n\n"  # between the pieces of a synthesized context (synth.separator)
_SENTINEL = "\x00CONTEXT\x00"


class View(Protocol):
    """How θ_A sees a sample: the tokenizer, its window, the context tokens it sees and where the
    sample's evidence lies (tokens after the evidence's end, tokens from its start; both to the end of
    the context; None without gold spans)."""

    tokenizer: Any
    window: int

    def budget(self, sample: Sample) -> int: ...

    def evidence(self, sample: Sample) -> tuple[int, int] | None: ...


def count_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclasses.dataclass
class ChatView:
    """θ_A's view under the chat template: the window minus the tokens the formatted sample holds
    besides its context; evidence positions from tokenizing the context's tail."""

    tokenizer: Any
    window: int

    def budget(self, sample: Sample) -> int:
        text = chat_text(self.tokenizer, messages_for(_SENTINEL, sample.instruction, sample.response))
        at = text.index(_SENTINEL)
        frame = count_tokens(self.tokenizer, text[:at]) + count_tokens(self.tokenizer, text[at + len(_SENTINEL):])
        return max(0, self.window - frame)

    def evidence(self, sample: Sample) -> tuple[int, int] | None:
        if not sample.gold:
            return None
        end = max(g.char_end for g in sample.gold)
        start = min(g.char_start for g in sample.gold)
        return count_tokens(self.tokenizer, sample.context[end:]), count_tokens(self.tokenizer, sample.context[start:])


def where(after_end: int, from_start: int, view: int) -> tuple[str, int]:
    """Where the evidence lies for θ_A, and its signed offset in tokens from the window's edge:
    `beyond` (all of it outside; offset = tokens between its end and the view, >= 0), `inside` (all of
    it seen; offset = minus the tokens between its start and the view's edge, <= 0) or `across`."""
    if after_end >= view:
        return "beyond", after_end - view
    if from_start <= view:
        return "inside", from_start - view
    return "across", 0


def placement(sample: Sample, view: View) -> dict[str, Any]:
    """The `planted` fields that say where a sample's evidence lies relative to θ_A's view."""
    budget = view.budget(sample)
    out: dict[str, Any] = {"window": view.window, "view": budget}
    found = view.evidence(sample)
    if found is not None:
        side, offset = where(*found, budget)
        out.update(evidence_from_end=list(found), evidence=side, evidence_offset=offset)
    return out


def planted_record(base: Sample, kind: str, view: View, *, instruction: str | None = None,
                   response: str | None = None, context: str | None = None, gold: list[GoldSpan] | None = None,
                   **extra: Any) -> Sample:
    """`base` with the parts a type changes replaced, its messages and length rebuilt, and `planted`
    saying what it is (type, the sample it came from, the evidence's place for θ_A)."""
    s = dataclasses.replace(
        base, context=base.context if context is None else context,
        instruction=base.instruction if instruction is None else instruction,
        response=base.response if response is None else response,
        gold=list(base.gold if gold is None else gold), source=dict(base.source))
    s.messages = messages_for(s.context, s.instruction, s.response)
    if (s.context, s.instruction, s.response) != (base.context, base.instruction, base.response):
        s.length = count_tokens(view.tokenizer, chat_text(view.tokenizer, s.messages))
    s.planted = {"type": kind, "base": base.id, **extra, **placement(s, view)}
    return s


# --- moving the evidence (far, local) --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pieces:
    """A context taken apart: the units around the gold spans (cut at the separator) and the gold
    spans' texts, in context order."""

    units: list[str]
    golds: list[str]


def take_apart(sample: Sample, sep: str = SEPARATOR) -> Pieces | str:
    """The sample's pieces, or the reason it cannot be taken apart (no gold, overlapping gold spans, a
    gold span that is not a whole piece of the context)."""
    ctx = sample.context
    spans = sorted(sample.gold, key=lambda g: (g.char_start, g.char_end))
    if not spans:
        return "no gold spans: the evidence cannot be moved"
    rest, golds, pos = [], [], 0
    for g in spans:
        if g.char_start < pos:
            return "overlapping gold spans"
        whole = (g.char_start == 0 or ctx[:g.char_start].endswith(sep)) and \
                (g.char_end == len(ctx) or ctx[g.char_end:].startswith(sep))
        if not whole or g.char_end <= g.char_start:
            return f"gold span {g.char_start}-{g.char_end} is not a whole piece of the context (cut at {sep!r})"
        rest.append(ctx[pos:g.char_start])
        golds.append(ctx[g.char_start:g.char_end])
        pos = g.char_end
    rest.append(ctx[pos:])
    units = [u for piece in rest for u in piece.split(sep) if u]
    return Pieces(units, golds)


def put_together(pieces: Pieces, slots: list[int], sep: str = SEPARATOR) -> tuple[str, list[GoldSpan]]:
    """The context with gold span i put before unit `slots[i]` (non-decreasing; len(units) = at the end),
    and the gold spans' new offsets (`segment`: the piece's position in the context)."""
    out: list[str] = []
    spans: list[GoldSpan] = []
    pos, gi = 0, 0
    for j in range(len(pieces.units) + 1):
        while gi < len(pieces.golds) and slots[gi] == j:
            text = pieces.golds[gi]
            start = pos + (len(sep) if out else 0)
            spans.append(GoldSpan(len(out), start, start + len(text)))
            out.append(text)
            pos = start + len(text)
            gi += 1
        if j < len(pieces.units):
            pos += (len(sep) if out else 0) + len(pieces.units[j])
            out.append(pieces.units[j])
    return sep.join(out), spans


def separator_tokens(tokenizer: Any, sep: str = SEPARATOR) -> int:
    """Tokens a separator adds between two sentences (BPE merges differ there from `sep` alone)."""
    a, b = "It ended in 1900.", "The next one began."
    return count_tokens(tokenizer, a + sep + b) - count_tokens(tokenizer, a) - count_tokens(tokenizer, b)


def candidate_slots(pieces: Pieces, kind: str, budget: int, margin: int, tokenizer: Any) -> list[int]:
    """Unit boundaries that put the gold beyond (far: for the last gold span) or inside (local: for the
    first) the view with `margin` tokens to spare, by the units' own token counts (exact counts are
    checked after the move)."""
    sep_tokens = separator_tokens(tokenizer)
    tail = [0] * (len(pieces.units) + 1)  # tokens of units[j:] with their separators
    for j in range(len(pieces.units) - 1, -1, -1):
        tail[j] = tail[j + 1] + count_tokens(tokenizer, pieces.units[j]) + sep_tokens
    gold = sum(count_tokens(tokenizer, g) + sep_tokens for g in pieces.golds)
    if kind == "far":
        return [j for j, t in enumerate(tail) if t >= budget + margin]
    return [j for j, t in enumerate(tail) if t + gold <= budget - margin]


def move_evidence(sample: Sample, kind: str, view: View, margin: int, rng: random.Random,
                  tries: int = 16) -> Sample | str:
    """The `far` or `local` variant of a sample, or why there is none. The gold spans keep their order
    (multi-hop answers depend on it) and land at boundaries drawn uniformly from the candidates; the
    exact position (`view.evidence`) must clear the view's edge by `margin` tokens."""
    pieces = take_apart(sample)
    if isinstance(pieces, str):
        return pieces
    budget = view.budget(sample)
    slots = candidate_slots(pieces, kind, budget, margin, view.tokenizer)
    for _ in range(tries if slots else 0):
        chosen = sorted(rng.choice(slots) for _ in pieces.golds)
        context, gold = put_together(pieces, chosen)
        moved = planted_record(sample, kind, view, context=context, gold=gold)
        after_end, from_start = moved.planted["evidence_from_end"]
        if (kind == "far" and after_end >= budget + margin) or (kind == "local" and from_start <= budget - margin):
            moved.num_segments = len(pieces.units) + len(pieces.golds)
            return moved
    side = "beyond" if kind == "far" else "inside"
    return (f"no position puts the evidence {side} θ_A's view ({budget} context tokens of a {view.window}-token "
            f"window) with {margin} tokens to spare")


# --- another sample's answer (absent, wrong) -------------------------------------------------------


def normalized(text: str) -> str:
    """Lower-cased, whitespace collapsed: what "occurs in the context" compares."""
    return " ".join(text.lower().split())


def donor_problem(kind: str, host: Sample, donor: Sample) -> str | None:
    """Why `donor`'s question / answer cannot make `host` an `absent` or `wrong` sample (None: it can).
    absent: the donor's answer and key fragments must occur nowhere in the host's context (a
    substring test after normalisation, so "Africa" in "Africans" counts as occurring); wrong: the
    donor's answer must differ from the host's."""
    if donor.id == host.id:
        return "a sample cannot be its own donor"
    if kind == "wrong":
        return "same answer" if normalized(donor.response) == normalized(host.response) else None
    context = normalized(host.context)
    if normalized(donor.response) in context:
        return "the donor's answer occurs in the context"
    if any(normalized(k) in context for k in donor.source.get("key_fragments") or [] if normalized(k)):
        return "a key fragment of the donor's question occurs in the context"
    return None


def with_donor(kind: str, host: Sample, donor: Sample, view: View) -> Sample:
    """absent: the donor's question and answer in the host's context (no evidence in it, so no gold);
    wrong: the host's question (and gold) with the donor's answer."""
    if kind == "absent":
        rec = planted_record(host, kind, view, instruction=donor.instruction, response=donor.response, gold=[],
                             donor=donor.id)
        rec.source = {**rec.source, "key_fragments": list(donor.source.get("key_fragments") or [])}
        return rec
    return planted_record(host, kind, view, response=donor.response, donor=donor.id)


__all__ = ["PLANTED_TYPES", "POSITION_TYPES", "DONOR_TYPES", "SEPARATOR", "View", "ChatView", "count_tokens",
           "where", "placement", "planted_record", "Pieces", "take_apart", "put_together", "separator_tokens", "candidate_slots",
           "move_evidence", "normalized", "donor_problem", "with_donor"]
