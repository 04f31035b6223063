"""The rules a config dataclass states for its fields in `__post_init__`.

Every config section checks its own values when it is built, so a bad value stops a command before any
work (and before anything is written), not after the expensive step that first reads it. Each rule
raises `FieldError` naming the dotted key (`select.alpha`); `core.config.build` adds where the value
came from (a file, the command line). Numbers must be finite: NaN and infinity break every range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from longcurate.core.errors import FieldError


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _or_null(optional: bool) -> str:
    return " (or null)" if optional else ""


def at_least(key: str, value: Any, low: float, *, optional: bool = False) -> None:
    """`value >= low` (a count, a size); `optional`: null is allowed too."""
    if value is None and optional:
        return
    if not (_number(value) and value >= low):
        raise FieldError(f"{key} must be >= {low:g}{_or_null(optional)}, got {value!r}")


def above(key: str, value: Any, low: float = 0.0, *, optional: bool = False) -> None:
    """`value > low` (a rate, a temperature, a duration); `optional`: null is allowed too."""
    if value is None and optional:
        return
    if not (_number(value) and value > low):
        raise FieldError(f"{key} must be > {low:g}{_or_null(optional)}, got {value!r}")


def between(key: str, value: Any, low: float, high: float, *, high_open: bool = False,
            optional: bool = False) -> None:
    """`low <= value <= high` (`high_open`: `< high`); `optional`: null is allowed too."""
    if value is None and optional:
        return
    inside = _number(value) and low <= value and (value < high if high_open else value <= high)
    if not inside:
        raise FieldError(f"{key} must be in [{low:g}, {high:g}{')' if high_open else ']'}{_or_null(optional)}, "
                         f"got {value!r}")


def one_of(key: str, value: Any, choices: Sequence[Any], *, optional: bool = False) -> None:
    """`value` is one of `choices`; `optional`: null is allowed too."""
    if value is None and optional:
        return
    if value not in choices:
        raise FieldError(f"{key} must be one of {list(choices)}{_or_null(optional)}, got {value!r}")


def each_of(key: str, values: Iterable[Any], choices: Sequence[Any], *, empty: bool = False) -> None:
    """A list of distinct entries of `choices` (`empty`: the empty list is allowed too)."""
    values = list(values)
    unknown = [v for v in values if v not in choices]
    if unknown:
        raise FieldError(f"{key}: unknown {unknown}; choose from {list(choices)}")
    if len(set(values)) != len(values):
        raise FieldError(f"{key} repeats an entry: {values}")
    if not values and not empty:
        raise FieldError(f"{key} must name at least one of {list(choices)}")


def require(ok: bool, key: str, message: str) -> None:
    """A rule of its own (often across fields): `key` and what is wrong."""
    if not ok:
        raise FieldError(f"{key} {message}")


__all__ = ["at_least", "above", "between", "one_of", "each_of", "require"]
