"""The samples a scoring process works on, from one streaming pass over the input.

Every shard reads the whole input once (one record at a time) because a sample's shard is decided by
its position among the valid samples (`ShardSpec.owns`), and only a full read knows which records are
valid and which repeat an id. Of each record it keeps the id and line; the records it owns it writes
to a spill file (`core.spill`) beside its part file and keeps their slots. So memory is a few dozen
bytes per input record plus one record, and the texts are read back one chunk at a time. The same
pass counts what the samples were made of (`select.conversations.InputReport`, one per limit asked).

Parse rejects are kept with the number of valid samples read before each one, so one pass with the
larger limit also serves a kind with a smaller one (CAM's `cam_limit`): exactly the ids and rejects
that a pass stopping at that limit would have met.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from longcurate.core.jsonl import Rejection, RejectSink
from longcurate.core.records import Sample
from longcurate.core.spill import RecordSpill
from longcurate.select.conversations import InputReport, SampleReading
from longcurate.select.inputs import iter_samples


@dataclass(frozen=True, slots=True)
class Owned:
    """One of this shard's samples: its position among the valid samples, its line, its spill slot."""

    position: int
    line: int
    slot: int


@dataclass
class CountedRejects(RejectSink):
    """Keeps each reject with how many valid samples were read before it (`before()` at that time), so
    they can be replayed as a pass stopping at any limit would have met them."""

    before: Callable[[], int] = lambda: 0
    kept: list[tuple[int, Rejection]] = field(default_factory=list)

    def add(self, reason: str, *, file: str | None = None, line: int | None = None,
            field_name: str | None = None, record_id: str | None = None, raw: Any = None) -> None:
        self.kept.append((self.before(), Rejection(reason, file, line, field_name, record_id, raw)))

    def replay(self, sink: RejectSink, limit: int | None = None) -> None:
        """The rejects met before the `limit`-th valid sample (all with None), into `sink`."""
        for before, r in self.kept:
            if limit is None or before < limit:
                sink.add(r.reason, file=r.file, line=r.line, field_name=r.field_name, record_id=r.record_id, raw=r.raw)


@dataclass
class InputIndex:
    """The valid samples' ids and lines in input order (the first `limit`), the parse rejects, and
    the spilled samples this process owns (none when nothing was spilled: a merge)."""

    source: str
    ids: list[str]
    lines: list[int]
    rejects: CountedRejects
    limit: int | None
    owned: list[Owned] = field(default_factory=list)
    spill: RecordSpill | None = None
    reports: dict[int | None, InputReport] = field(default_factory=dict)  # limit -> what its samples were made of

    @classmethod
    def read(cls, path: str | Path, limit: int | None, allow_download: bool = False,
             owns: Callable[[int], bool] | None = None, beside: Path | None = None,
             reading: SampleReading | None = None, report_limits: tuple[int | None, ...] = ()) -> "InputIndex":
        """One pass over `path` read as `reading` says; with `owns` and `beside`, the owned samples go
        to a spill file there; an `InputReport` of the first n samples for each n in `report_limits`."""
        seen: list[str] = []
        lines: list[int] = []
        rejects = CountedRejects(lambda: len(seen))
        spill = RecordSpill(beside) if owns is not None and beside is not None else None
        owned: list[Owned] = []
        reports = {n: InputReport() for n in report_limits}
        try:
            for row, sample in iter_samples(path, rejects, limit, allow_download, reading):
                if spill is not None and owns(len(seen)):
                    owned.append(Owned(len(seen), row.line, spill.add(pickle.dumps(sample))))
                for n, report in reports.items():
                    if n is None or len(seen) < n:
                        report.add(sample)
                seen.append(sample.id)
                lines.append(row.line)
        except BaseException:
            if spill is not None:
                spill.close()
            raise
        return cls(str(path), seen, lines, rejects, limit, owned, spill, reports)

    def covers(self, limit: int | None) -> bool:
        """Whether this pass read at least as far as a pass stopping at `limit` would have."""
        return self.limit is None or (limit is not None and limit <= self.limit)

    def expected(self, limit: int | None) -> list[str]:
        """The ids a pass stopping at `limit` keeps, in input order."""
        return self.ids if limit is None else self.ids[:limit]

    def line_of(self, limit: int | None) -> Callable[[str], int | None]:
        """An id's line; the table is made on the first call (a merge asks only about the few ids the
        scorer rejected)."""
        table: dict[str, int] = {}

        def lookup(rid: str) -> int | None:
            if not table:
                table.update(zip(self.expected(limit), self.lines))
            return table.get(rid)

        return lookup

    def replay(self, sink: RejectSink, limit: int | None) -> None:
        """The parse rejects a pass stopping at `limit` meets, into `sink`."""
        self.rejects.replay(sink, limit)

    def sample(self, slot: int) -> Sample:
        """An owned sample, read back from the spill file."""
        if self.spill is None:
            raise RuntimeError("this index spilled no samples")
        return pickle.loads(self.spill.get(slot))

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()
            self.spill = None


__all__ = ["InputIndex", "Owned", "CountedRejects"]
