"""One reader of record files for every stage: JSONL, JSON (a list of records, a mapping key ->
record, or JSON Lines in a `.json` file), Parquet, a `datasets` folder (`save_to_disk`, a Dataset or a
DatasetDict), a folder of such files, a glob (`data/*.jsonl.gz`), and a Hugging Face Hub dataset id
(only with `allow_download`). JSONL and JSON files may be compressed (`.gz`, `.zst`); every file is
streamed (a JSON list a record at a time: `core.json_stream`), so memory never holds a whole file.

Every source yields `Row(file, line, record)`: `line` is the 1-based line (JSONL), entry (JSON) or row
(Parquet, datasets), so a bad record is quarantined with the same file / line / reason wherever it
came from. Records are plain dicts; what a stage needs from them is its own business (the chat shapes:
`core.chat_formats`).
"""

from __future__ import annotations

import errno
import glob
import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, TypeVar

from longcurate.core.errors import UserError
from longcurate.core.json_stream import iter_entries
from longcurate.core.jsonl import RejectSink, file_digest, read_jsonl, reject
from longcurate.core.records import RecordError

SUFFIXES = (".jsonl", ".json", ".parquet")
COMPRESSIONS = (".gz", ".zst")  # for .jsonl and .json
_DATASET_MARKERS = ("dataset_dict.json", "state.json")
_GLOB_CHARS = "*?["
_JSONL_PEEK = 8 << 20  # bytes of a `.json` file's first line read to tell JSON Lines from one document
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


def record_suffix(path: str | os.PathLike) -> tuple[str, str]:
    """(record suffix, compression suffix or "") of a file name: `a.jsonl.gz` -> (".jsonl", ".gz")."""
    p = Path(path)
    comp = p.suffix if p.suffix in COMPRESSIONS else ""
    return (Path(p.stem).suffix if comp else p.suffix), comp


def is_record_file(path: Path) -> bool:
    """A file a folder or glob contributes: a record suffix, compressed only where it can be."""
    suffix, comp = record_suffix(path)
    return suffix in SUFFIXES and not (comp and suffix == ".parquet")


def _glob(source: str) -> list[Path] | None:
    """The files a glob pattern matches (sorted), or None when `source` is not a pattern."""
    if not any(c in source for c in _GLOB_CHARS) or Path(source).exists():
        return None
    return sorted(Path(m) for m in glob.glob(source, recursive=True) if Path(m).is_file())


def source_exists(source: str | os.PathLike) -> bool:
    """A path that exists, or a glob that matches a file."""
    matched = _glob(str(source))
    return bool(matched) if matched is not None else Path(source).exists()


def source_files(source: str | os.PathLike) -> list[Path]:
    """The files a source reads (for digests): the file itself, the files a glob matches, every file of
    a datasets folder, or the record files of a folder, sorted."""
    matched = _glob(str(source))
    if matched is not None:
        return matched
    p = Path(source)
    if not p.exists():
        return []
    if p.is_file():
        return [p]
    if is_dataset_folder(p):
        return sorted(f for f in p.rglob("*") if f.is_file())
    return sorted(f for f in p.rglob("*") if f.is_file() and is_record_file(f))


def source_digest(source: str | os.PathLike) -> str | None:
    """sha256 (16 hex digits) of what an input holds: a file's bytes (`file_digest`); for a `datasets`
    folder its Arrow data files (relative names and bytes: the rows, whoever wrote the folder); for a
    folder of record files or a glob each of them. None when nothing is there (a Hub id: its name
    identifies it). Completion markers record it, so an input edited in place is noticed whatever its path."""
    p = Path(source)
    if p.is_file():
        return file_digest(p)
    files = [f for f in source_files(source) if not is_dataset_folder(p) or f.suffix == ".arrow"]
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        name = f.relative_to(p).as_posix() if p.is_dir() else f.as_posix()
        h.update(f"{name}:{file_digest(f)}\n".encode())
    return h.hexdigest()[:16]


def read_rows(source: str | os.PathLike, rejects: RejectSink | None = None, *, split: str | None = None,
              allow_download: bool = False) -> Iterator[Row]:
    """Every record of `source`, in a fixed order; unusable lines go to `rejects`."""
    p = Path(source)
    matched = _glob(str(source))
    if matched is not None:
        if not matched:
            raise FileNotFoundError(2, "no file matches the pattern", str(source))
        for f in matched:
            yield from _file_rows(f, rejects)
    elif p.is_dir() and is_dataset_folder(p):
        yield from _dataset_rows(p, split)
    elif p.is_dir():
        files = source_files(p)
        if not files:
            raise UserError(f"{p}: the folder holds no {'/'.join(SUFFIXES)} files (optionally "
                            f"{'/'.join(COMPRESSIONS)}) and is not a datasets folder")
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


def open_bytes(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed for `.gz` and `.zst`, read as a stream."""
    comp = record_suffix(path)[1]
    if comp == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if comp == ".zst":
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def _file_rows(path: Path, rejects: RejectSink | None) -> Iterator[Row]:
    suffix, comp = record_suffix(path)
    if suffix not in (".jsonl", ".json") and not (suffix == ".parquet" and not comp):
        raise UserError(f"{path}: unsupported file type {suffix + comp!r}; use one of {', '.join(SUFFIXES)} "
                        f"(JSONL and JSON also {' or '.join(COMPRESSIONS)}-compressed) or a datasets folder")
    if suffix == ".parquet":
        yield from _parquet_rows(path)
        return
    try:
        if suffix == ".jsonl" or _holds_json_lines(path):
            for line, obj in read_jsonl(path, rejects, opener=open_bytes):
                yield Row(str(path), line, obj)
        else:
            yield from _json_rows(path, rejects)
    except _decompression_errors(comp) as e:  # a truncated or corrupt .gz / .zst
        raise UserError(f"{path}: cannot decompress ({e})") from None


def _decompression_errors(comp: str) -> tuple[type[BaseException], ...]:
    if comp == ".gz":
        return (OSError, EOFError)  # gzip.BadGzipFile is an OSError
    if comp == ".zst":
        import zstandard

        return (zstandard.ZstdError, OSError, EOFError)
    return ()


def _holds_json_lines(path: Path) -> bool:
    """A `.json` file that is JSON Lines (many datasets ship them so): its first line is a whole JSON
    object and another line follows, or that object is a record rather than a mapping of records."""
    with open_bytes(path) as f:
        first = f.readline(_JSONL_PEEK)
        rest = f.readline(_JSONL_PEEK) if first.endswith(b"\n") else b""
        while rest and not rest.strip():
            rest = f.readline(_JSONL_PEEK)
    try:
        obj = json.loads(first.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(obj, dict) and (bool(rest.strip()) or not all(isinstance(v, dict) for v in obj.values()))


def _json_rows(path: Path, rejects: RejectSink | None) -> Iterator[Row]:
    """A JSON list or mapping, one entry at a time (`core.json_stream`)."""
    with open_bytes(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig")
        try:
            entries = iter_entries(text, str(path))
            for i, (key, obj) in enumerate(entries, start=1):
                if not isinstance(obj, dict):
                    reject(rejects, "not a JSON object", file=str(path), line=i, record_id=key)
                    continue
                yield Row(str(path), i, obj, key)
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 ({e})") from None
        except UserError as e:
            if "expected '[' or '{'" in str(e):
                raise UserError(f"{path}: expected a JSON list of records or a mapping of records") from None
            raise


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

    try:
        ds = datasets.load_dataset(name, split=split or "train")
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as e:  # not found, offline, a bad split
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # a full disk: named as such by the CLI
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") else ""
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        raise UserError(f"dataset {name} cannot be loaded from the Hugging Face Hub{offline}: {reason}") from None
    for i, obj in enumerate(ds, start=1):
        yield Row(name, i, dict(obj))


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.endswith(SUFFIXES + COMPRESSIONS)


__all__ = ["Row", "read_rows", "read_parsed", "source_files", "source_digest", "source_exists", "is_dataset_folder",
           "is_record_file", "record_suffix", "open_bytes", "SUFFIXES", "COMPRESSIONS"]
