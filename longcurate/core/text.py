"""Text helpers shared by every stage: sentence, word and line spans (synth segments and templates,
eval probes and needles use the same splitter).

Spans are (start, end) character offsets into the given text, so every quote the templates make is
a verbatim slice of the corpus.
"""

from __future__ import annotations

import re

# A sentence ends at . ! or ? (plus closing quotes/brackets) followed by whitespace and a character
# that can open a sentence.
_BOUNDARY = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[A-Z0-9])")
_ABBREV = {"mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "prof", "gen", "col", "lt", "sgt", "capt",
           "vs", "etc", "no", "vol", "fig", "approx", "inc", "ltd", "co", "corp", "e.g", "i.e", "u.s",
           "u.k", "a.d", "b.c", "ca", "c", "est", "op", "feat"}
_WORD = re.compile(r"\S+")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentences of text[start:end] as spans without surrounding whitespace."""
    end = len(text) if end is None else end
    spans = []
    cur = start
    for m in _BOUNDARY.finditer(text, start, end):
        # the word before the full stop: skip abbreviations and initials ("J. R. R. Tolkien")
        if text[m.start()] == ".":
            j = m.start()
            i = j
            while i > cur and not text[i - 1].isspace():
                i -= 1
            word = text[i:j].lower().lstrip("(\"'")
            if word in _ABBREV or (len(word) == 1 and word.isalpha()):
                continue
        stop = m.start() + len(m.group(0).rstrip())
        _add(text, spans, cur, stop)
        cur = m.end()
    _add(text, spans, cur, end)
    return spans


def _add(text: str, spans: list[tuple[int, int]], s: int, e: int) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        spans.append((s, e))


def word_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Whitespace-separated words of text[start:end]."""
    end = len(text) if end is None else end
    return [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]


def line_spans(text: str) -> list[tuple[int, int]]:
    """Non-empty lines (paragraphs) as spans without surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        _add(text, spans, pos, pos + len(line))
        pos += len(line) + 1
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of every line (paragraph) of `text`, as strings."""
    return [text[s:e] for ls, le in line_spans(text) for s, e in sentence_spans(text, ls, le)]
