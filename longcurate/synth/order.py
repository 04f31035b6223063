"""A finished samples file is in index order, whatever order its samples were written in.

Samples are appended as they are made; a sample left pending (the endpoint was down) or refused is
written by a later run, after samples with higher indices. Once nothing is pending, the file is put
in index order, so a run that was interrupted, failed or retried ends with the same bytes as one that
never was. The pass streams: only the samples written out of order are held in memory, and the file
is replaced atomically (a kill mid-way leaves the old one, and the next run sorts again).
"""

from __future__ import annotations

import heapq
import json
import os
from pathlib import Path
from typing import Callable, Iterator

from longcurate.core.jsonl import atomic_open


def _lines(path: Path, key: Callable[[str], int]) -> Iterator[tuple[int, int, bytes]]:
    """(position, index, raw line) for every line of the file."""
    with open(path, "rb") as f:
        for pos, raw in enumerate(f):
            yield pos, key(json.loads(raw)["id"]), raw


def late_lines(path: Path, key: Callable[[str], int]) -> dict[int, tuple[int, bytes]]:
    """The lines whose index is lower than one before them: position -> (index, raw line)."""
    late: dict[int, tuple[int, bytes]] = {}
    top = -1
    for pos, index, raw in _lines(path, key):
        if index < top:
            late[pos] = (index, raw)
        top = max(top, index)
    return late


def sort_by_index(path: str | os.PathLike, key: Callable[[str], int]) -> int:
    """Rewrite the file in index order when it is not; returns how many lines were out of order."""
    path = Path(path)
    if not path.exists():
        return 0
    late = late_lines(path, key)
    if not late:
        return 0
    in_order = ((index, raw) for pos, index, raw in _lines(path, key) if pos not in late)
    with atomic_open(path, "wb") as out:
        for _, raw in heapq.merge(in_order, sorted(late.values()), key=lambda item: item[0]):
            out.write(raw)
    return len(late)


__all__ = ["sort_by_index", "late_lines"]
