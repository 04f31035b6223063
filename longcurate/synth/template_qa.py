"""The offline `template` QA backend: deterministic questions whose answers are verbatim slices of
the given segments, so every answer can be checked against its gold segment(s).

Fine-grained (one segment):
  sentence_recall  quote the sentence that contains a given 4-8-word fragment
  cloze            which word/phrase fills the blank in a quoted sentence
  topic            which article a fragment comes from (only for segments that name their title)
Multi-hop (>= 2 distinct segments: of one document by default, IN2's way, or of several documents
under `synth.multihop_source: cross`):
  order            which of two fragments comes first in the context (more than two: list them in order)
  pair_recall      quote the sentences that contain the given fragments, in context order

Every fragment occurs in exactly one of the request's segments, so the questions hold whether the
segments share a document or not. Multi-hop answers depend on where the segments end up: they assume
the request's segments appear in the context in request order, and the assembly keeps that order (see
`assemble.py`; segments of one document are requested in the document's order).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import TYPE_CHECKING, Callable

from longcurate.core.text import sentence_spans, word_spans
from longcurate.synth.config import MULTIHOP_TYPES
from longcurate.synth.qa import Evidence, QARequest, QAResult, SegmentText

if TYPE_CHECKING:
    from longcurate.synth.config import SynthRun

BLANK = "____"

STOPWORDS = frozenset("""a an the and or but nor so yet of in on at to for from by with without into onto
upon over under about above below between among through during before after since until as than
then that this these those there here which who whom whose what when where why how is are was were be
been being am has have had having do does did done can could may might must shall should will would
it its it's he him his she her hers they them their theirs we us our you your i me my not no also
such very more most many much some any each every all both either neither other another own same
only just one two first second new""".split())

_EDGE_PUNCT = ",;:.!?()[]{}'\u2018\u2019\u201c\u201d"
_TRAIL_PUNCT = ",;:.!?)]}'\"\u2019\u201d"
_LEAD_PUNCT = "([{'\"\u2018\u201c"
_CORE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-']*[A-Za-z0-9]|[A-Za-z0-9]")


class TemplateError(ValueError):
    """This segment does not support this question type (the pipeline draws another)."""


class TemplateBackend:
    """The `template` QA backend (satisfies `qa.QABackend`): offline, free, never exhausted."""

    name = "template"
    exhausted = False  # no requests, no caps
    stop_reason = None

    def __init__(self) -> None:
        self._counts: Counter = Counter()

    @classmethod
    def from_config(cls, run_cfg: SynthRun) -> "TemplateBackend":
        return cls()

    def generate(self, requests: list[QARequest]) -> list[QAResult]:
        return [self.generate_one(r) for r in requests]

    def generate_one(self, req: QARequest) -> QAResult:
        self._counts["requests"] += 1
        try:
            fn = _TYPES[req.qtype]
        except KeyError:
            return self._fail(req, f"unknown template type {req.qtype!r}; known: {', '.join(_TYPES)}")
        if req.qtype in MULTIHOP_TYPES:
            if len(req.segments) < 2:
                return self._fail(req, f"{req.qtype} needs >= 2 segments")
            if len({(s.doc_id, s.index) for s in req.segments}) != len(req.segments):
                return self._fail(req, f"{req.qtype} needs distinct segments")
        elif len(req.segments) != 1:
            return self._fail(req, f"{req.qtype} takes exactly one segment")
        rng = random.Random(f"{req.seed}|{req.request_id}")
        try:
            question, answer, keys, evidence = fn(req.segments, rng)
        except TemplateError as e:
            return self._fail(req, f"no {req.qtype}: {e}")
        self._counts["ok"] += 1
        return QAResult(request_id=req.request_id, question=question, answer=answer, key_fragments=keys,
                        evidence=evidence, generator=f"template:{req.qtype}")

    def _fail(self, req: QARequest, error: str) -> QAResult:
        self._counts["error: " + error.split(":")[0]] += 1
        return QAResult(request_id=req.request_id, generator=f"template:{req.qtype}", error=error)

    def stats(self) -> dict:
        return dict(sorted(self._counts.items()))


# --- helpers ---------------------------------------------------------------------------------------


def _content_words(text: str) -> int:
    return sum(1 for w in _CORE.findall(text) if len(w) >= 3 and w.lower() not in STOPWORDS)


def _strip_span(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s] in _EDGE_PUNCT:
        s += 1
    while e > s and text[e - 1] in _EDGE_PUNCT:
        e -= 1
    return s, e


def _sentences(text: str, min_words: int) -> list[tuple[int, int]]:
    return [(s, e) for s, e in sentence_spans(text) if len(word_spans(text, s, e)) >= min_words]


def _pick_fragment(rng: random.Random, text: str, sent: tuple[int, int], others: tuple[str, ...] = (),
                   min_w: int = 4, max_w: int = 8, spare: int = 2, avoid: str | None = None,
                   tries: int = 12) -> tuple[int, int] | None:
    """A span of min_w..max_w consecutive words of the sentence (not all of it) that occurs once in
    `text`, in none of `others`, holds >= 2 content words and no double quote."""
    words = word_spans(text, *sent)
    lower = text.lower()
    hi_w = min(max_w, len(words) - spare)
    if hi_w < min_w:
        return None
    for _ in range(tries):
        n = rng.randint(min_w, hi_w)
        a = rng.randrange(0, len(words) - n + 1)
        s, e = _strip_span(text, words[a][0], words[a + n - 1][1])
        frag = lower[s:e]
        if '"' in frag or len(frag.split()) < min_w or _content_words(frag) < 2:
            continue
        if avoid and avoid in frag:
            continue
        if lower.count(frag) != 1 or any(frag in o for o in others):
            continue
        return s, e
    return None


def _shuffled(rng: random.Random, items: list[str]) -> list[str]:
    """The fragments in random order, so the phrase shown first is not a hint."""
    out = list(items)
    rng.shuffle(out)
    return out


def _quote_list(items: list[str]) -> str:
    quoted = [f'"{x}"' for x in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


# --- fine-grained types ----------------------------------------------------------------------------

QA = tuple[str, str, list[str], list[Evidence]]


def sentence_recall(segs: tuple[SegmentText, ...], rng: random.Random) -> QA:
    text = segs[0].text
    sents = _sentences(text, 8)
    rng.shuffle(sents)
    for sent in sents:
        if '"' in text[sent[0]:sent[1]]:
            continue
        span = _pick_fragment(rng, text, sent)
        if span is None:
            continue
        frag = text[span[0]:span[1]]
        question = f'Quote the sentence in the context that contains the phrase "{frag}".'
        return question, text[sent[0]:sent[1]], [frag], [Evidence(0, *sent)]
    raise TemplateError("no sentence with a unique 4-8-word fragment")


def cloze(segs: tuple[SegmentText, ...], rng: random.Random) -> QA:
    text = segs[0].text
    lower = text.lower()
    sents = _sentences(text, 8)
    rng.shuffle(sents)
    for ss, se in sents:
        sentence = text[ss:se]
        if '"' in sentence or BLANK in sentence:
            continue
        words = word_spans(text, ss, se)
        cands = []
        for k, (ws, we) in enumerate(words[1:], start=1):  # never the first word
            m = _CORE.search(text, ws, we)
            if m is None or m.end() - m.start() < 4 or m.group(0).lower() in STOPWORDS:
                continue
            bs, be = m.start(), m.end()
            if text[bs].isupper():  # a name: take the following capitalised words too ("Stanley Kubrick")
                for ws2, we2 in words[k + 1:k + 3]:
                    m2 = _CORE.match(text, ws2, we2)
                    if m2 is None or not text[ws2].isupper() or text[be:ws2].strip():
                        break
                    be = m2.end()
            cands.append((bs, be))
        rng.shuffle(cands)
        for bs, be in cands:
            answer = text[bs:be]
            if sentence.lower().count(answer.lower()) != 1:
                continue
            left, right = text[ss:bs].strip(), text[be:se].strip()
            key = max((left, right), key=lambda p: len(p.split()))
            if len(key.split()) < 4 or lower.count(key.lower()) != 1:
                continue
            blanked = text[ss:bs] + BLANK + text[be:se]
            question = f'Which word or phrase fills the blank ({BLANK}) in this sentence from the context? "{blanked}"'
            return question, answer, [key], [Evidence(0, ss, se)]
    raise TemplateError("no sentence with a clear blank")


def _title_forms(title: str) -> list[str]:
    """The title, and without a trailing parenthetical ("Mercury (planet)" -> "Mercury")."""
    forms = [title.strip()]
    base = re.sub(r"\s*\([^)]*\)\s*$", "", title).strip()
    if base and base != forms[0]:
        forms.append(base)
    return [f for f in forms if len(f) >= 3]


def topic(segs: tuple[SegmentText, ...], rng: random.Random) -> QA:
    seg = segs[0]
    text, lower = seg.text, seg.text.lower()
    found = next(((f, lower.find(f.lower())) for f in _title_forms(seg.title) if f.lower() in lower), None)
    if found is None:
        raise TemplateError("the segment does not name its title")
    form, at = found
    title_lower = form.lower()
    sents = _sentences(text, 6)
    rng.shuffle(sents)
    for sent in sents:
        span = _pick_fragment(rng, text, sent, min_w=5, max_w=8, spare=0, avoid=title_lower)
        if span is None:
            continue
        frag = text[span[0]:span[1]]
        question = (f'Which article does the passage containing "{frag}" come from? '
                    "Answer with the article's title, which that passage names.")
        answer = text[at:at + len(form)]
        return question, answer, [frag], [Evidence(0, at, at + len(form)), Evidence(0, *span)]
    raise TemplateError("no fragment without the title")


# --- multi-hop types -------------------------------------------------------------------------------


def _fragments(segs: tuple[SegmentText, ...], rng: random.Random, min_words: int
               ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Per segment: (sentence span, fragment span), each fragment absent from the other segments."""
    lowers = [s.text.lower() for s in segs]
    out = []
    for i, seg in enumerate(segs):
        others = tuple(lowers[:i] + lowers[i + 1:])
        sents = _sentences(seg.text, min_words)
        rng.shuffle(sents)
        for sent in sents:
            if '"' in seg.text[sent[0]:sent[1]] or any(seg.text[sent[0]:sent[1]].lower() in o for o in others):
                continue
            span = _pick_fragment(rng, seg.text, sent, others=others)
            if span is not None:
                out.append((sent, span))
                break
        else:
            raise TemplateError(f"segment {i} has no unique fragment")
    return out


def order(segs: tuple[SegmentText, ...], rng: random.Random) -> QA:
    picks = _fragments(segs, rng, 6)
    frags = [s.text[a:b] for s, (_, (a, b)) in zip(segs, picks)]
    shown = _shuffled(rng, frags)
    if len(frags) == 2:
        question = f'Which of these two phrases appears first in the context: "{shown[0]}" or "{shown[1]}"?'
        answer = frags[0]
    else:
        question = ("List these phrases in the order in which they appear in the context, one per line: "
                    + _quote_list(shown) + ".")
        answer = "\n".join(frags)
    evidence = [Evidence(i, a, b) for i, (_, (a, b)) in enumerate(picks)]
    return question, answer, frags, evidence


def pair_recall(segs: tuple[SegmentText, ...], rng: random.Random) -> QA:
    picks = _fragments(segs, rng, 6)
    frags = [s.text[a:b] for s, (_, (a, b)) in zip(segs, picks)]
    sentences = [s.text[a:b] for s, ((a, b), _) in zip(segs, picks)]
    shown = _shuffled(rng, frags)
    question = (f"Quote the sentences that contain the phrases {_quote_list(shown)}, one per line, "
                "in the order in which they appear in the context.")
    evidence = [Evidence(i, a, b) for i, ((a, b), _) in enumerate(picks)]
    return question, "\n".join(sentences), frags, evidence


# One maker per question type of `synth.config` (FINE_TYPES, MULTIHOP_TYPES, where the config checks names).
_TYPES: dict[str, Callable[[tuple[SegmentText, ...], random.Random], QA]] = {
    "sentence_recall": sentence_recall,
    "cloze": cloze,
    "topic": topic,
    "order": order,
    "pair_recall": pair_recall,
}
