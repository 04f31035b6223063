"""`longcurate synth report FILE`: what a samples file holds, as text in the terminal — counts by kind
and generator, length deciles and histogram, and where the gold segments sit in their contexts.

It reads any samples file (`core.reader`: a budget file, Parquet, `.gz`, ...). A field the file does
not hold is reported as absent, never invented: a record without `kind` (LongAlign, ShareGPT) counts
as kind `unknown`, one without `length` is left out of the length figures and counted apart."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longcurate.core.jsonl import RecordedRejects
from longcurate.core.reader import read_rows
from longcurate.core.records import is_count

BAR = 40
UNKNOWN = "unknown"  # what a record without `kind` or a generator is counted as


@dataclass
class SynthSummary:
    n: int = 0
    kinds: Counter = field(default_factory=Counter)
    generators: Counter = field(default_factory=Counter)
    lengths: list[int] = field(default_factory=list)  # samples that have a length
    long_lengths: list[int] = field(default_factory=list)  # kind != short (unknown counts as long)
    no_length: int = 0  # samples without a `length` field
    gold_positions: list[float] = field(default_factory=list)  # relative position of each gold span (long kinds)
    bad_lines: int = 0


def gold_relative_position(context_chars: int, char_start: int, char_end: int) -> float:
    """Centre of a gold span as a fraction of the context (0 = start, 1 = end)."""
    return (char_start + char_end) / 2 / max(1, context_chars)


def _add(s: SynthSummary, r: dict[str, Any]) -> None:
    kind = r.get("kind") or UNKNOWN
    length = r.get("length")
    if length is not None and not is_count(length):
        raise ValueError(f"length {length!r}")
    n_ctx = len(r.get("context") or "")
    gold = r.get("gold") or []
    source = r.get("source") if isinstance(r.get("source"), dict) else {}
    positions = [gold_relative_position(n_ctx, g["char_start"], g["char_end"]) for g in gold]
    s.n += 1
    s.kinds[str(kind)] += 1
    s.generators[source.get("generator") or UNKNOWN] += 1
    if length is None:
        s.no_length += 1
    else:
        s.lengths.append(int(length))
    if kind != "short":
        s.long_lengths += [int(length)] if length is not None else []
        s.gold_positions += positions


def summarize(path: str | os.PathLike) -> SynthSummary:
    """One streaming pass over the file (records that do not parse are counted, not fatal)."""
    s = SynthSummary()
    unreadable = RecordedRejects()
    for row in read_rows(path, unreadable):
        try:
            _add(s, row.record)
        except (ValueError, TypeError, AttributeError, KeyError):
            s.bad_lines += 1
    s.bad_lines += len(unreadable.rejections)
    return s


def _bar(count: int, peak: int) -> str:
    return "#" * (round(BAR * count / peak) if peak else 0)


def _counts(title: str, counter: Counter, total: int) -> list[str]:
    lines = [title]
    for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {k:<28} {v:>7}  {100 * v / max(1, total):5.1f}%")
    return lines


def _histogram(title: str, values: list[float], lo: float, hi: float, bins: int = 10, fmt: str = "{:.0f}") -> list[str]:
    lines = [title]
    if not values or hi <= lo:
        return lines + ["  (none)"]
    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins, range=(lo, hi))
    peak = int(counts.max())
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        label = f"{fmt.format(a)}-{fmt.format(b)}"
        lines.append(f"  {label:>15} {int(c):>7} {100 * c / len(values):5.1f}% {_bar(int(c), peak)}")
    return lines


def format_report(s: SynthSummary, path: str = "") -> str:
    out = [f"synth report: {path}" if path else "synth report", f"samples: {s.n}"]
    if s.bad_lines:
        out.append(f"unreadable lines: {s.bad_lines}")
    if not s.n:
        return "\n".join(out)
    out += _counts("by kind:", s.kinds, s.n)
    out += _counts("by generator:", s.generators, s.n)
    if s.no_length:
        out.append(f"length: absent in {s.no_length} of {s.n} samples (not counted below; select measures "
                   "token counts when it scores)")
    if s.lengths:
        qs = np.percentile(np.asarray(s.lengths), np.arange(0, 101, 10)).round().astype(int)
        out.append(f"length deciles (tokens, {len(s.lengths)} samples): "
                   + " ".join(f"p{10 * i}={q}" for i, q in enumerate(qs)))
    if s.long_lengths:
        lo, hi = min(s.long_lengths), max(s.long_lengths)
        out += _histogram(f"length histogram (long kinds, {len(s.long_lengths)} samples):", s.long_lengths, lo, hi)
    if s.gold_positions:
        from scipy import stats

        p = stats.kstest(s.gold_positions, "uniform").pvalue
        out += _histogram(f"gold position in context (0 = start, 1 = end; {len(s.gold_positions)} spans; "
                          f"KS uniformity p = {p:.3f}):", s.gold_positions, 0.0, 1.0, fmt="{:.1f}")
    return "\n".join(out)


def report(path: str | os.PathLike) -> str:
    return format_report(summarize(path), str(path))
