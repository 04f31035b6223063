"""JSONL I/O that never loses a record: rejected lines go to a quarantine file, writes are atomic,
appends are resumable by `id`.

One rule for numbers: JSON has no NaN or Infinity, so every JSON text the project writes goes through
`finite_json`, which writes a non-finite number as `null` and says so (a warning naming the file and
the places, once per file and process; further ones at debug level). A reader then sees "no value"
instead of failing on a bare `NaN` that Python alone accepts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Protocol

log = logging.getLogger("longcurate.jsonl")
_WARNED: set[str] = set()  # files already warned about non-finite numbers in this process


def finite_json(obj: Any, where: str | os.PathLike = "JSON", **kw: Any) -> str:
    """`json.dumps(obj, **kw)` with NaN and +-Infinity written as null (and reported, see the module
    doc); `where` names the file for the report."""
    try:
        return json.dumps(obj, allow_nan=False, **kw)
    except ValueError as e:
        if "Out of range float" not in str(e):
            raise
    places: list[str] = []
    clean = _nulled(obj, "$", places)
    where = str(where)
    log.log(logging.DEBUG if where in _WARNED else logging.WARNING,
            "%s: %d non-finite number(s) (NaN or Infinity) written as null, at %s%s", where, len(places),
            ", ".join(places[:5]), " ..." if len(places) > 5 else "")
    _WARNED.add(where)
    return json.dumps(clean, allow_nan=False, **kw)


def _nulled(obj: Any, place: str, places: list[str]) -> Any:
    """`obj` with every non-finite float replaced by None; their JSON paths appended to `places`."""
    if isinstance(obj, float) and not math.isfinite(obj):
        places.append(place)
        return None
    if isinstance(obj, dict):
        return {k: _nulled(v, f"{place}.{k}", places) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nulled(v, f"{place}[{i}]", places) for i, v in enumerate(obj)]
    return obj


def dumps(record: dict[str, Any], where: str | os.PathLike = "JSON") -> str:
    """One canonical JSON line: the same record always gives the same bytes (non-finite numbers as
    null, `finite_json`)."""
    return finite_json(record, where, ensure_ascii=False, separators=(", ", ": "))


def rejected_path(output: str | os.PathLike) -> Path:
    """`out.jsonl` -> `out.rejected.jsonl` (beside the output)."""
    p = Path(output)
    stem = p.name[:-len(".jsonl")] if p.name.endswith(".jsonl") else p.name
    return p.with_name(stem + ".rejected.jsonl")


@contextlib.contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """A full disk (ENOSPC, EDQUOT) while writing `path` says which file: the OS error of a write or
    flush carries no file name, so it is raised again with `path` as its file name. safetensors (Rust)
    reports a full disk as its own error type, `... (os error 28)`; that becomes the same OSError."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise
    except Exception as e:
        if f"(os error {errno.ENOSPC})" in str(e):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside `path`, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with naming(path):
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
            f.write(dumps(r, path) + "\n")
            n += 1
    return n


def write_json(path: str | os.PathLike, obj: Any, **kw: Any) -> None:
    """Atomically write one JSON document (indented; `kw` for `json.dumps`, e.g. `sort_keys`)."""
    with atomic_open(path) as f:
        f.write(finite_json(obj, path, **{"ensure_ascii": False, "indent": 2, **kw}) + "\n")


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
        with naming(self.path):
            self._f.write(dumps(entry, self.path) + "\n")
            self._f.flush()
        self.counts[_reason_class(reason)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        if self._f is not None:
            with naming(self.path):
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
    """One `RejectSink.add` call, kept to be replayed."""

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


@dataclass
class RecordedRejects(RejectSink):
    """Keeps every reject, so one parse of an input can feed several quarantines (`replay`)."""

    rejections: list[Rejection] = field(default_factory=list)

    def add(self, reason: str, *, file: str | None = None, line: int | None = None,
            field_name: str | None = None, record_id: str | None = None, raw: Any = None) -> None:
        self.rejections.append(Rejection(reason, file, line, field_name, record_id, raw))

    def replay(self, sink: RejectSink) -> None:
        for r in self.rejections:
            sink.add(r.reason, file=r.file, line=r.line, field_name=r.field_name, record_id=r.record_id, raw=r.raw)


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


def read_jsonl(path: str | os.PathLike, rejects: RejectSink | None = None,
               opener: Callable[[Path], IO[bytes]] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, object) for each good line; bad lines (not UTF-8, not JSON, not an object)
    go to `rejects` (or raise ValueError naming file and line when no quarantine is given). A UTF-8
    byte-order mark at the start of the file (some editors write one) is skipped. `opener` gives the
    file's bytes (a decompressing one for `.gz` / `.zst`: `core.reader`); default: the file as is."""
    path = Path(path)
    with (opener or (lambda p: open(p, "rb")))(path) as f:
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
        with naming(self.path):
            self._f.write(dumps(record, self.path) + "\n")
        self.done.add(rid)
        self._pending += 1
        if self._pending >= self.fsync_every:
            self.flush()
        return True

    def flush(self) -> None:
        with naming(self.path):
            self._f.flush()
            os.fsync(self._f.fileno())
        self._pending = 0

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            with naming(self.path):
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
