"""The select stage's own reject sink: under sharding, each shard quarantines only the lines it owns
(`ShardRejects`), so the merged quarantine lists each bad line once. (The input is read once per
process and its parse-level rejects replayed into each score kind's quarantine with
`sample_index.CountedRejects`; budgets and diagnostics re-read it with `core.jsonl.DiscardRejects`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from longcurate.core.jsonl import RejectSink
from longcurate.select.shard import ShardSpec


@dataclass
class ShardRejects(RejectSink):
    """Every shard parses the whole input; each one passes on the rejects of the lines it owns only."""

    inner: RejectSink
    spec: ShardSpec

    def add(self, reason: str, *, file: str | None = None, line: int | None = None,
            field_name: str | None = None, record_id: str | None = None, raw: Any = None) -> None:
        if self.spec.owns(int(line or 0)):
            self.inner.add(reason, file=file, line=line, field_name=field_name, record_id=record_id, raw=raw)


__all__ = ["ShardRejects"]
