"""One reader of record files for every stage: JSONL, JSON (a list of records, or a mapping key ->
record), Parquet, a `datasets` folder (`save_to_disk`, a Dataset or a DatasetDict), a folder of such
files, and a Hugging Face Hub dataset id (only with `allow_download`).

Every source yields `Row(file, line, record)`: `line` is the 1-based line (JSONL), entry (JSON) or row
(Parquet, datasets), so a bad record is quarantined with the same file / line / reason wherever it
came from. Records are plain dicts; what a stage needs from them is its own business.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from longcurate.core.errors import UserError
from longcurate.core.json_stream import iter_json_entries
from longcurate.core.jsonl import RejectSink, file_digest, read_jsonl, reject
from longcurate.core.records import RecordError

SUFFIXES = (".jsonl", ".json", ".parquet")
_DATASET_MARKERS = ("dataset_dict.json", "state.json")
T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    file: str
    line: int
    record: dict[str, Any]
    key: str | None = None  # the mapping key of a JSON {key: record} file


def is_dataset_folder(path: str | os.PathLike) -> bool:
    """A folder written by `datasets`' `save_to_disk`."""
    p = Path(path)
    return p.is_dir() and any((p / m).exists() for m in _DATASET_MARKERS)


def source_files(source: str | os.PathLike) -> list[Path]:
    """The files a source reads (for digests): the file itself, every file of a datasets folder, or the
    record files of a folder, sorted."""
    p = Path(source)
    if not p.exists():
        return []
    if p.is_file():
        return [p]
    if is_dataset_folder(p):
        return sorted(f for f in p.rglob("*") if f.is_file())
    return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES)


def source_digest(source: str | os.PathLike) -> str | None:
    """sha256 (16 hex digits) of what an input holds: a file's bytes (`file_digest`); for a `datasets`
    folder its Arrow data files (relative names and bytes: the rows, whoever wrote the folder); for a
    folder of record files each of them. None when nothing is there (a Hub id: its name identifies it).
    Completion markers record it, so an input edited in place is noticed whatever its path."""
    p = Path(source)
    if p.is_file():
        return file_digest(p)
    files = [f for f in source_files(p) if not is_dataset_folder(p) or f.suffix == ".arrow"]
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(p).as_posix()}:{file_digest(f)}\n".encode())
    return h.hexdigest()[:16]


def read_rows(source: str | os.PathLike, rejects: RejectSink | None = None, *, split: str | None = None,
              allow_download: bool = False) -> Iterator[Row]:
    """Every record of `source`, in a fixed order; unusable lines go to `rejects`."""
    p = Path(source)
    if p.is_dir() and is_dataset_folder(p):
        yield from _dataset_rows(p, split)
    elif p.is_dir():
        files = source_files(p)
        if not files:
            raise UserError(f"{p}: the folder holds no {'/'.join(SUFFIXES)} files and is not a datasets folder")
        for f in files:
            yield from _file_rows(f, rejects)
    elif p.exists():
        yield from _file_rows(p, rejects)
    elif allow_download and _looks_like_hub_id(str(source)):
        yield from _hub_rows(str(source), split)
    else:
        hint = "" if allow_download or not _looks_like_hub_id(str(source)) else \
            " (a Hub dataset id is read only with allow_download: true)"
        raise FileNotFoundError(2, f"input not found{hint}", str(source))


def read_parsed(path: str | Path, parse: Callable[[dict[str, Any]], T], rejects: RejectSink | None,
                allow_download: bool = False) -> Iterator[tuple[Row, T]]:
    """Each record of `path` (`core.reader.read_rows`) that `parse` accepts, with what it made; a record
    it rejects (RecordError, or ValueError and kin for a mistyped value) is quarantined with file, line
    and field, and the rest go on. What each stage's record parser reads through."""
    for row in read_rows(path, rejects, allow_download=allow_download):
        rid = row.record.get("id")
        rid = None if rid is None else str(rid)
        try:
            value = parse(row.record)
        except RecordError as e:
            reject(rejects, e.reason, file=row.file, line=row.line, field_name=e.field, record_id=rid)
            continue
        except (ValueError, TypeError, KeyError, OverflowError) as e:
            reject(rejects, f"invalid record: {e}", file=row.file, line=row.line, record_id=rid)
            continue
        yield row, value


def _file_rows(path: Path, rejects: RejectSink | None) -> Iterator[Row]:
    if path.suffix == ".jsonl":
        for line, obj in read_jsonl(path, rejects):
            yield Row(str(path), line, obj)
    elif path.suffix == ".json":
        yield from _json_rows(path, rejects)
    elif path.suffix == ".parquet":
        yield from _parquet_rows(path)
    else:
        raise UserError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(SUFFIXES)} "
                        f"or a datasets folder")


def _json_rows(path: Path, rejects: RejectSink | None) -> Iterator[Row]:
    """A JSON list or mapping of records, streamed one entry at a time (`core.json_stream`)."""
    for i, (key, obj) in enumerate(iter_json_entries(path), start=1):
        if not isinstance(obj, dict):
            reject(rejects, "not a JSON object", file=str(path), line=i, record_id=key)
            continue
        yield Row(str(path), i, obj, key)


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for obj in batch.to_pylist():
            row += 1
            yield Row(str(path), row, obj)


def _dataset_rows(path: Path, split: str | None) -> Iterator[Row]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        name = split or ("train" if "train" in ds else None)
        if name not in ds:
            raise UserError(f"{path}: choose a split (have: {', '.join(ds)})")
        ds = ds[name]
    for i, obj in enumerate(ds, start=1):
        yield Row(str(path), i, dict(obj))


def _hub_rows(name: str, split: str | None) -> Iterator[Row]:
    import datasets

    ds = datasets.load_dataset(name, split=split or "train")
    for i, obj in enumerate(ds, start=1):
        yield Row(name, i, dict(obj))


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.endswith(SUFFIXES)


__all__ = ["Row", "read_rows", "read_parsed", "source_files", "source_digest", "is_dataset_folder", "SUFFIXES"]
