"""A cache file that several steps share (the judge's ratings, asked by every model's eval): it is not
any step's output, so it has no `.done` and no settings, but two runs must never append to it at once.
While open it holds its own lock; it keeps the valid entries already written (a torn last line from a
crash is dropped) and appends new ones with fsync, so what a killed run paid for is kept."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import ResumableWriter, read_valid_prefix
from longcurate.core.lock import output_lock


class SharedCache:
    """`with SharedCache(path) as cache: cache.get(k); cache.put({"key": k, ...})`."""

    def __init__(self, path: str | os.PathLike, key: str = "key"):
        self.path = Path(path)
        self.key = key
        self.entries: dict[str, dict[str, Any]] = {}
        self._writer: ResumableWriter | None = None
        self._held: contextlib.ExitStack | None = None

    def __enter__(self) -> "SharedCache":
        self._held = contextlib.ExitStack()
        self._held.enter_context(output_lock(self.path))
        found, _ = read_valid_prefix(self.path)
        self.entries = {e[self.key]: e for e in found if isinstance(e, dict) and self.key in e}
        self._writer = self._held.enter_context(ResumableWriter(self.path, key=self.key))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, entry: dict[str, Any]) -> None:
        """Append one entry (fsync'd) and keep it for `get`."""
        if self._writer is None:
            raise RuntimeError(f"open the cache {self.path} with `with` before writing to it")
        self._writer.write(entry)
        self.entries[entry[self.key]] = entry


__all__ = ["SharedCache"]
