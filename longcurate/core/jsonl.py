"""JSONL I/O that never loses a record: rejected lines go to a quarantine file, writes are atomic,
appends are resumable by `id`."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Protocol



def dumps(record: dict[str, Any]) -> str:
    """One canonical JSON line: the same record always gives the same bytes."""
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": "))


def rejected_path(output: str | os.PathLike) -> Path:
    """`out.jsonl` -> `out.rejected.jsonl` (beside the output)."""
    p = Path(output)
    stem = p.name[:-len(".jsonl")] if p.name.endswith(".jsonl") else p.name
    return p.with_name(stem + ".rejected.jsonl")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside `path`, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Atomically write all records; returns how many."""
    n = 0
    with atomic_open(path) as f:
        for r in records:
            f.write(dumps(r) + "\n")
            n += 1
    return n


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=2, sort_keys=False)
        f.write("\n")


class RejectSink(Protocol):
    """Where rejected input goes: one call per bad record, with where it was and why. `Rejects`
    (the quarantine file) is the one every stage writes; others filter or collect before it."""

    def add(self, reason: str, *, file: str | None = None, line: int | None = None,
            field_name: str | None = None, record_id: str | None = None, raw: Any = None) -> None: ...


@dataclass
class Rejects:
    """Quarantine for bad input: each rejection is a JSON line with file, line, field and reason.

    The file is opened lazily (no rejects -> no file) and rewritten from scratch per run, so a
    re-run gives the same file.
    """

    path: Path
    counts: Counter = field(default_factory=Counter)
    _f: IO | None = None
    _seen: set = field(default_factory=set)

    def add(self, reason: str, *, file: str | None = None, line: int | None = None,
            field_name: str | None = None, record_id: str | None = None, raw: Any = None) -> None:
        key = (file, line, record_id, reason)
        if key in self._seen:  # the same bad line met twice in one run (e.g. resume) is logged once
            return
        self._seen.add(key)
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "w", encoding="utf-8")
        entry = {"file": file, "line": line, "field": field_name, "id": record_id, "reason": reason}
        if raw is not None:
            entry["raw"] = raw if isinstance(raw, (str, dict, list)) else repr(raw)
        self._f.write(dumps(entry) + "\n")
        self._f.flush()
        self.counts[_reason_class(reason)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None

    def summary(self) -> str:
        if not self.total:
            return "rejected: 0"
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        return f"rejected: {self.total} ({parts}) -> {self.path}"

    def __enter__(self) -> "Rejects":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class Rejection:
    """One `RejectSink.add` call, kept to be replayed (e.g. `select.sample_index.CountedRejects`)."""

    reason: str
    file: str | None = None
    line: int | None = None
    field_name: str | None = None
    record_id: str | None = None
    raw: Any = None


class DiscardRejects(RejectSink):
    """Drops every reject: for a second read of an input whose bad lines were already quarantined."""

    def add(self, reason: str, *, file: str | None = None, line: int | None = None,
            field_name: str | None = None, record_id: str | None = None, raw: Any = None) -> None:
        return None


def read_json_if_valid(path: str | os.PathLike) -> Any | None:
    """A JSON file's content, or None when it is missing or unreadable (e.g. left torn by a crash):
    callers treat that as "not done yet" and redo the work."""
    p = Path(path)
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _reason_class(reason: str) -> str:
    """Group reasons for counting: the text before the first ':' ("empty response: ..." -> "empty response")."""
    return reason.split(":", 1)[0].strip()


def read_jsonl(path: str | os.PathLike, rejects: RejectSink | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, object) for each good line; bad lines (not UTF-8, not JSON, not an object)
    go to `rejects` (or raise ValueError naming file and line when no quarantine is given). A UTF-8
    byte-order mark at the start of the file (some editors write one) is skipped."""
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                reject(rejects, f"not UTF-8: {e}", file=path, line=lineno,
                       raw=raw.decode("utf-8", "replace").rstrip("\n")[:2000])
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                reject(rejects, f"invalid JSON: {e.msg} at column {e.colno}", file=path, line=lineno,
                       raw=text.rstrip("\n")[:2000])
                continue
            if not isinstance(obj, dict):
                reject(rejects, "not a JSON object", file=path, line=lineno,
                       raw=text.rstrip("\n")[:2000])
                continue
            yield lineno, obj


def reject(rejects: RejectSink | None, reason: str, *, file: str | os.PathLike | None, line: int | None = None,
           field_name: str | None = None, record_id: str | None = None, raw: Any = None) -> None:
    """Quarantine a bad record in `rejects`, or, with no quarantine (strict callers), raise a
    ValueError that names its file, line and id."""
    if rejects is None:
        where = f"{file}:{line}" if line is not None else str(file)
        field = f"field '{field_name}': " if field_name else ""
        raise ValueError(f"{where}: {field}{reason}" + (f" (id {record_id})" if record_id else ""))
    rejects.add(reason, file=None if file is None else str(file), line=line, field_name=field_name,
                record_id=record_id, raw=raw)


def read_valid_prefix(path: str | os.PathLike, pick: Callable[[Any], Any] | None = None) -> tuple[list[Any], int]:
    """The parsed lines of an append-only JSONL file up to its first torn or unparsable line (what a
    crash mid-write leaves), and the byte length of that good part; ([], 0) when the file is missing.
    What `ResumableWriter` keeps, so callers that read such a file agree with it. With `pick`, only
    `pick(record)` of each line is kept (e.g. its id), so a large file is not held in memory."""
    p = Path(path)
    records: list[Any] = []
    good_bytes = 0
    if not p.exists():
        return records, good_bytes
    with open(p, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # torn write: the process died mid-line
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            records.append(pick(obj) if pick is not None else obj)
            good_bytes += len(raw)
    return records, good_bytes


class ResumableWriter:
    """Append records keyed by `id` with fsync; on open, keeps the valid lines already written
    (dropping a torn last line from a crash) so a re-run skips finished ids and writes no duplicates."""

    def __init__(self, path: str | os.PathLike, key: str = "id", fsync_every: int = 1):
        self.path = Path(path)
        self.key = key
        self.fsync_every = max(1, fsync_every)
        self.done: set[str] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._f = open(self.path, "a", encoding="utf-8")
        self._pending = 0

    def _recover(self) -> None:
        if not self.path.exists():
            return
        ids, good_bytes = read_valid_prefix(self.path, pick=lambda obj: str(obj[self.key]))
        self.done.update(ids)
        if good_bytes != self.path.stat().st_size:
            with open(self.path, "r+b") as f:
                f.truncate(good_bytes)

    def __contains__(self, record_id: object) -> bool:
        return str(record_id) in self.done

    def write(self, record: dict[str, Any]) -> bool:
        """Append unless the id is already there; returns whether it was written."""
        rid = str(record[self.key])
        if rid in self.done:
            return False
        self._f.write(dumps(record) + "\n")
        self.done.add(rid)
        self._pending += 1
        if self._pending >= self.fsync_every:
            self.flush()
        return True

    def flush(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._pending = 0

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            self._f.close()

    def __enter__(self) -> "ResumableWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def done_marker(output: str | os.PathLike) -> Path:
    """Completion marker written only after the output is closed and fsynced."""
    p = Path(output)
    return p.with_name(p.name + ".done")


def file_digest(path: str | os.PathLike) -> str | None:
    """sha256 of a file's bytes (16 hex digits), None when it does not exist: ties a derived output
    to the exact inputs it was made from."""
    import hashlib

    p = Path(path)
    if not p.exists():
        return None
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
