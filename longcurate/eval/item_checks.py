"""What makes a line of an eval item file usable: probes, needles and FILM's VaL data lines.

An item file may be the user's own (`--probes FILE`, FILM's released files), so every field an item
is scored or aggregated by is checked before it is asked: ids and texts are strings, positions,
sets and lengths whole numbers in range (`position_id` NaN, -5 or "zero" is no position), fractions
and depths finite and in range. A line that fails raises `RecordError` naming the field; the readers
quarantine it (`<file>.rejected.jsonl`, with file, line, field and reason) and it is never scored.
"""

from __future__ import annotations

import math
from typing import Any

from longcurate.core.records import RecordError

PROBE_TEXTS = ("key", "answer", "context", "instruction")
PROBE_COUNTS = ("key_char", "answer_char", "key_token")  # optional offsets (>= 0) of the items built here


def whole(d: dict[str, Any], name: str, *, low: int = 0, required: bool = True) -> int | None:
    """A whole-number field >= `low` (a bool, a float, NaN or a string is not one); None when it is
    absent and not `required`."""
    value = d.get(name)
    if value is None:
        if required:
            raise RecordError(name, "missing field" if name not in d else "must be a whole number, got null")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RecordError(name, f"must be a whole number >= {low}, got {value!r:.60}")
    return value


def number(d: dict[str, Any], name: str, low: float, high: float, *, required: bool = True) -> float | None:
    """A finite number field in [low, high]; None when absent and not `required`."""
    value = d.get(name)
    if value is None:
        if required:
            raise RecordError(name, "missing field" if name not in d else "must be a number, got null")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise RecordError(name, f"must be a finite number in [{low:g}, {high:g}], got {value!r:.60}")
    return float(value)


def text(d: dict[str, Any], name: str, *, nonempty: bool = False) -> str:
    value = d.get(name)
    if name not in d:
        raise RecordError(name, "missing field")
    if not isinstance(value, str) or (nonempty and not value.strip()):
        raise RecordError(name, f"must be a {'non-empty ' if nonempty else ''}string, got {value!r:.60}")
    return value


def check_probe(d: dict[str, Any], tasks: tuple[str, ...]) -> None:
    """A probe line: id, task, set_id, position_id (< num_positions when given), its texts, and the
    optional offsets and fractions the builder records."""
    if not isinstance(d, dict):
        raise RecordError("<line>", "not a JSON object")
    text(d, "id", nonempty=True)
    if text(d, "task") not in tasks:
        raise RecordError("task", f"unknown task {d['task']!r}; known: {', '.join(tasks)}")
    whole(d, "set_id")
    position = whole(d, "position_id")
    positions = whole(d, "num_positions", low=1, required=False)
    if positions is not None and position >= positions:
        raise RecordError("position_id", f"must be below num_positions ({positions}), got {position}")
    for name in PROBE_TEXTS:
        text(d, name)
    for name in PROBE_COUNTS:
        whole(d, name, required=False)
    whole(d, "context_tokens", low=1, required=False)
    number(d, "key_token_fraction", 0.0, 1.0, required=False)
    if d.get("description") is not None and not isinstance(d["description"], str):
        raise RecordError("description", f"must be a string, got {d['description']!r:.60}")


def check_needle(d: dict[str, Any]) -> None:
    """A needle line: id, haystack length (tokens, >= 1), depth (percent, 0-100), its texts and key words."""
    if not isinstance(d, dict):
        raise RecordError("<line>", "not a JSON object")
    text(d, "id", nonempty=True)
    whole(d, "length", low=1)
    number(d, "depth", 0.0, 100.0)
    text(d, "context")
    text(d, "question")
    words = d.get("key_words")
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        raise RecordError("key_words", "must be a non-empty list of non-empty strings")
    whole(d, "context_tokens", low=1, required=False)
    whole(d, "needle_char", required=False)
    number(d, "needle_token_fraction", 0.0, 1.0, required=False)


def check_val_line(d: dict[str, Any], task: str) -> None:
    """A line of FILM's VaL data: position_id and set_id (whole numbers >= 0) and its ground truth
    (`completion`; database: `label` and `description`)."""
    whole(d, "position_id")
    whole(d, "set_id")
    for name in (("label", "description") if task == "database" else ("completion",)):
        text(d, name)


__all__ = ["whole", "number", "text", "check_probe", "check_needle", "check_val_line"]
