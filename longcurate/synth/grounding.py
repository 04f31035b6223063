"""Checks of a model's QA answer against the segments it was asked about (pure functions, no I/O).

A reply must be JSON with `question`, `answer` and `evidence` (a list of quotes); the question must
stand alone (no "the context", "the passage", "piece 2"), every evidence quote of at least MIN_QUOTE_WORDS words must
occur verbatim (up to whitespace and quotation marks) in the segments, and multi-hop evidence must
come from at least two of them. What passes becomes `Evidence` spans (character offsets in the
segments) and key fragments, the short verbatim pieces the assembler keeps out of the fillers.
"""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

from longcurate.core.endpoint import NonAnswer
from longcurate.synth.qa import Evidence, SegmentText

MIN_QUOTE_WORDS = 3  # shorter evidence quotes ("the war") prove nothing and are ignored
KEY_FRAGMENT_WORDS = 8

# Questions that point at the prompt instead of standing alone inside a long context (IN2: no "the
# context", no "the passage"; "the passage of the act" and "in the context of the war" are English).
_CONTEXT_REFERENCE = re.compile(
    r"\b(?:based on|according to) the (?:given |provided |above |following )?"
    r"(?:context|passages?|text|excerpts?|segments?|documents?|pieces?)\b"
    r"|\bthe (?:context|passages?|excerpts?|pieces?)\b(?! of\b)"
    r"|\b(?:these|the (?:given|provided|above|following|numbered)) "
    r"(?:context|passages?|texts?|excerpts?|segments?|documents?|pieces?)\b"
    r"|\b(?:passage|segment|piece)s? #?\d",
    re.I)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S | re.I)
_QUOTE_CHARS = "\"'“”‘’«»`"


class AnswerFormatError(NonAnswer):
    """The model's reply is not the QA JSON asked for: not an answer (retried, never cached)."""


class UngroundedError(ValueError):
    """The reply is QA JSON but its evidence is not in the segments: an answer, cached, that the
    sample cannot use (not retried: same prompt, same answer; the pipeline draws another request)."""


def parse_answer(content: str | None, finish_reason: str | None = None) -> dict[str, Any]:
    """The QA JSON from a reply: {"question": str, "answer": str, "evidence": [str, ...]}.
    Raises AnswerFormatError (malformed / truncated / missing or empty fields)."""
    if content is None or not content.strip():
        raise AnswerFormatError("empty reply")
    text = content.strip()
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        obj = None
        if 0 <= start < end:
            try:
                obj = json.loads(text[start:end + 1])
            except json.JSONDecodeError:
                obj = None
        if obj is None:
            truncated = finish_reason == "length" or not text.rstrip().endswith("}")
            what = "truncated JSON" if truncated and "{" in text else "malformed JSON"
            raise AnswerFormatError(f"{what} (finish_reason={finish_reason})") from None
    if not isinstance(obj, dict):
        raise AnswerFormatError("malformed JSON: not an object")
    out: dict[str, Any] = {}
    for name in ("question", "answer"):
        value = obj.get(name)
        if not isinstance(value, str) or not value.strip():
            raise AnswerFormatError(f"missing or empty field {name!r}")
        out[name] = value.strip()
    evidence = obj.get("evidence")
    if isinstance(evidence, str):
        evidence = [evidence]
    if not isinstance(evidence, list) or not evidence:
        raise AnswerFormatError("missing or empty field 'evidence'")
    quotes = [q.strip() for q in evidence if isinstance(q, str) and q.strip()]
    if not quotes:
        raise AnswerFormatError("field 'evidence' holds no quote")
    out["evidence"] = quotes
    return out


def normalize_ws(text: str) -> tuple[str, list[int]]:
    """Collapse whitespace runs to one space and strip; also return, for each kept character, its
    offset in `text` (so a match in the normalised text maps back to original offsets)."""
    chars: list[str] = []
    index: list[int] = []
    pending_space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            pending_space = bool(chars)
            continue
        if pending_space:
            chars.append(" ")
            index.append(i - 1)
            pending_space = False
        chars.append(ch)
        index.append(i)
    return "".join(chars), index


def clean_quote(quote: str) -> str:
    """Whitespace-normalised quote without the decoration models add: surrounding quotation marks
    and leading / trailing ellipses."""
    q = " ".join(quote.split())
    for _ in range(3):
        before = q
        q = q.strip(_QUOTE_CHARS).strip()
        for ell in ("...", "…"):
            if q.startswith(ell):
                q = q[len(ell):].strip()
            if q.endswith(ell):
                q = q[: -len(ell)].strip()
        if q == before:
            break
    return q


def locate_quote(quote: str, segments: Sequence[SegmentText]) -> Evidence | None:
    """The first segment span equal to `quote` up to whitespace (a trailing full stop may differ)."""
    q = clean_quote(quote)
    if not q:
        return None
    candidates = [q]
    if q[-1] in ".,;:" and len(q) > 1:
        candidates.append(q[:-1].rstrip())
    for cand in candidates:
        for i, seg in enumerate(segments):
            norm, index = normalize_ws(seg.text)
            pos = norm.find(cand)
            if pos >= 0:
                return Evidence(segment=i, char_start=index[pos], char_end=index[pos + len(cand) - 1] + 1)
    return None


def ground(kind: str, parsed: dict[str, Any], segments: Sequence[SegmentText]) -> tuple[list[Evidence], list[str]]:
    """Evidence spans and key fragments for a parsed answer; raises UngroundedError when a quote is
    not in the segments, no usable quote remains, or multi-hop evidence covers < 2 segments."""
    ref = _CONTEXT_REFERENCE.search(parsed["question"])
    if ref:
        raise UngroundedError(f"question refers to the context instead of standing alone ({ref.group(0)!r})")
    spans: list[Evidence] = []
    for quote in parsed["evidence"]:
        if len(clean_quote(quote).split()) < MIN_QUOTE_WORDS:
            continue
        ev = locate_quote(quote, segments)
        if ev is None:
            raise UngroundedError(f"evidence quote not found in the segments: {quote[:80]!r}")
        if all((e.segment, e.char_start, e.char_end) != (ev.segment, ev.char_start, ev.char_end) for e in spans):
            spans.append(ev)
    if not spans:
        raise UngroundedError(f"no evidence quote of at least {MIN_QUOTE_WORDS} words")
    covered = {e.segment for e in spans}
    if kind == "multihop" and len(covered) < 2:
        raise UngroundedError(f"multi-hop evidence covers {len(covered)} segment(s); at least 2 needed")
    fragments: list[str] = []
    for e in spans:
        frag = key_fragment(segments[e.segment].text[e.char_start:e.char_end])
        if frag and frag not in fragments:
            fragments.append(frag)
    return spans, fragments


def key_fragment(span: str, max_words: int = KEY_FRAGMENT_WORDS) -> str:
    """A short verbatim piece of an evidence span for the assembler's ambiguity check: up to
    `max_words` words of the first line of the span that has >= MIN_QUOTE_WORDS words (a fragment
    never crosses a line break, so a plain substring test finds it in a filler)."""
    lines = [ln for ln in span.splitlines() if ln.strip()]
    if not lines:
        return ""
    line = next((ln for ln in lines if len(ln.split()) >= MIN_QUOTE_WORDS), lines[0])
    words = list(re.finditer(r"\S+", line))[:max_words]
    return line[words[0].start():words[-1].end()]


def check_reply(kind: str, content: str | None, finish_reason: str | None,
                segments: Sequence[SegmentText]) -> tuple[dict[str, Any], list[Evidence], list[str]]:
    """A reply parsed and grounded: (parsed answer, evidence spans, key fragments). Raises
    AnswerFormatError or UngroundedError; the same content always gives the same outcome."""
    parsed = parse_answer(content, finish_reason)
    evidence, fragments = ground(kind, parsed, segments)
    return parsed, evidence, fragments
