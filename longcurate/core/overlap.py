"""Text overlap between evaluation items and training data, streamed over the training side.

For every registered evaluation text (an answer, a key, a needle) two measures, both on text that is
case-folded with whitespace collapsed:
- exact: the text occurs in some training text as a whole-word substring (Aho–Corasick over all
  registered texts at once, one pass per training text). The automaton holds at most the first
  ANCHOR_CHARS characters of each text (its anchor), and an anchor found is checked against the whole
  text in place: a text of any length is matched exactly, while the automaton's trie stays shallow
  (pyahocorasick crashes the process on a pattern of a few hundred thousand words);
- n-gram share: the fraction of its word n-grams (13 by default, the contamination unit of GPT-3 and
  LLaMA reports) found anywhere in the training data (hashed n-grams, vectorised with numpy; only the
  evaluation side's n-grams are held in memory, so the training side can be millions of samples).
Texts shorter than n words have no n-grams; for them only `exact` applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

NGRAM = 13
ANCHOR_CHARS = 1000  # the longest piece of an evaluation text the automaton holds
_MULT = np.uint64(0x100000001B3)  # FNV prime: a polynomial over word hashes, wrapping mod 2**64


def normalize(text: str) -> str:
    """Case-folded, whitespace collapsed to single spaces, stripped."""
    return " ".join(text.casefold().split())


def anchor(norm: str) -> str:
    """The first ANCHOR_CHARS characters of a normalised text, cut after a whole word when it can be."""
    if len(norm) <= ANCHOR_CHARS:
        return norm
    cut = norm.rfind(" ", 0, ANCHOR_CHARS + 1)
    return norm[:cut] if cut > 0 else norm[:ANCHOR_CHARS]


def ngram_hashes(words: list[str], n: int = NGRAM) -> np.ndarray:
    """One 64-bit hash per run of `n` consecutive words (empty when there are fewer words). Word
    hashes are Python's string hashes: stable within a process, which is all one check needs."""
    if len(words) < n:
        return np.empty(0, dtype=np.uint64)
    h = np.fromiter(map(hash, words), dtype=np.int64, count=len(words)).view(np.uint64)
    out = np.zeros(len(words) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            out = out * _MULT + h[k:len(h) - n + 1 + k]
    return out


@dataclass
class TextOverlap:
    """What the training data shares with one evaluation text."""

    exact: bool
    ngrams: int  # the text's distinct n-grams
    ngrams_found: int  # of those, how many occur in the training data

    @property
    def share(self) -> float | None:
        return self.ngrams_found / self.ngrams if self.ngrams else None


class OverlapIndex:
    """Register evaluation texts with `add`, stream training texts through `scan`, read `results`."""

    def __init__(self, n: int = NGRAM):
        self.n = n
        self._texts: dict[str, str] = {}  # key -> normalized text
        self._ngrams: dict[str, np.ndarray] = {}
        self._automaton = None
        self._all: np.ndarray | None = None
        self._found_exact: set[str] = set()
        self._found_hashes: set[int] = set()
        self.scanned_texts = 0
        self.scanned_words = 0

    def add(self, key: str, text: str) -> None:
        """Register one evaluation text under `key` (e.g. "<item id>/answer")."""
        if self._automaton is not None:
            raise RuntimeError("add every evaluation text before the first scan")
        norm = normalize(text)
        if not norm:
            return
        self._texts[key] = norm
        self._ngrams[key] = np.unique(ngram_hashes(norm.split(" "), self.n))

    def _build(self) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        by_text: dict[str, list[str]] = {}
        for key, norm in self._texts.items():
            by_text.setdefault(norm, []).append(key)
        by_anchor: dict[str, list[tuple[str, list[str]]]] = {}
        for norm, keys in by_text.items():
            by_anchor.setdefault(anchor(norm), []).append((norm, keys))
        for head, texts in by_anchor.items():
            self._automaton.add_word(head, (len(head), texts))
        if by_anchor:
            self._automaton.make_automaton()
        parts = list(self._ngrams.values())
        self._all = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)

    def scan(self, text: str) -> None:
        """Look for every registered text in one training text."""
        if self._automaton is None:
            self._build()
        norm = normalize(text)
        self.scanned_texts += 1
        if not norm:
            return
        if self._texts:
            for end, (length, texts) in self._automaton.iter(norm):
                start = end - length + 1
                for text_norm, keys in texts:
                    stop = start + len(text_norm)
                    whole = len(text_norm) == length or norm.startswith(text_norm, start)
                    if whole and _whole_words(norm, start, stop):
                        self._found_exact.update(keys)
        words = norm.split(" ")
        self.scanned_words += len(words)
        if len(self._all):
            hashes = ngram_hashes(words, self.n)
            hits = hashes[contains_sorted(self._all, hashes)]
            self._found_hashes.update(int(h) for h in hits)

    def scan_all(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.scan(text)

    def results(self) -> dict[str, TextOverlap]:
        found = np.sort(np.fromiter(self._found_hashes, dtype=np.uint64, count=len(self._found_hashes)))
        out = {}
        for key in self._texts:
            grams = self._ngrams[key]
            out[key] = TextOverlap(exact=key in self._found_exact, ngrams=int(len(grams)),
                                   ngrams_found=int(contains_sorted(found, grams).sum()))
        return out


def contains_sorted(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which `values` occur in `table` (sorted, unique): a binary search per value. `np.isin` would
    sort the table again on every call, which made each scan cost O(table) instead of O(text)."""
    if not len(table) or not len(values):
        return np.zeros(len(values), dtype=bool)
    pos = np.searchsorted(table, values)
    pos[pos == len(table)] = 0
    return table[pos] == values


def _whole_words(text: str, start: int, end: int) -> bool:
    """The match neither starts nor ends inside a word."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    cuts_start = before.isalnum() and text[start].isalnum()
    cuts_end = after.isalnum() and text[end - 1].isalnum()
    return not (cuts_start or cuts_end)


__all__ = ["NGRAM", "ANCHOR_CHARS", "anchor", "normalize", "ngram_hashes", "TextOverlap", "OverlapIndex"]
