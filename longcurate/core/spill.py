"""A spill file: records a step needs again later, kept on disk instead of in memory.

A step that streams its input once but must come back to some records in another order (the
scoring shard's samples longest first, the budget files' chosen samples in rank order, the mixture
in shuffled order) appends each record's bytes here and keeps only its slot number; reading a slot
back is one seek. The file is anonymous (unlinked at once, gone when closed or when the process dies)
and lives beside the step's output, so it needs that disk's space and never the machine's memory.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from pathlib import Path
from typing import Any


class RecordSpill:
    """Append blobs, read them back by slot: memory is 8 bytes a record, whatever the record's size."""

    def __init__(self, beside: str | os.PathLike):
        folder = Path(beside).parent
        folder.mkdir(parents=True, exist_ok=True)
        self._f = tempfile.TemporaryFile(dir=folder, prefix=".spill-")
        self._offsets = array("q", [0])

    def add(self, blob: bytes) -> int:
        """Append a blob; returns its slot."""
        self._f.seek(self._offsets[-1])
        self._f.write(blob)
        self._offsets.append(self._offsets[-1] + len(blob))
        return len(self._offsets) - 2

    def get(self, slot: int) -> bytes:
        start, end = self._offsets[slot], self._offsets[slot + 1]
        self._f.seek(start)
        return self._f.read(end - start)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "RecordSpill":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["RecordSpill"]
