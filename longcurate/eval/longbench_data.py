"""LongBench (v1) data: its records, their validation, and reading a task from a local folder or the hub.

    <data_dir>/<task>.jsonl      data lines: input, context, answers, length, dataset, all_classes, _id
    <data_dir>/<task>_e.jsonl    the same for LongBench-E

A line that cannot be used (bad JSON, a missing or mistyped field, a duplicate `_id`) becomes a
`Failure` of its task, with file, line and field: it is counted and listed, never scored as 0.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.jsonl import RejectSink
from longcurate.core.reader import read_rows
from longcurate.core.records import RecordError
from longcurate.eval import metrics

if TYPE_CHECKING:
    from longcurate.eval.config import LongBenchConfig

log = logging.getLogger("longcurate.eval.longbench")


@dataclass
class LongBenchItem:
    """One data line of a LongBench task."""

    id: str
    task: str
    input: str
    context: str
    answers: list[str | int]  # integers as in passage_count's files (scored as their text)
    length: int | None = None
    all_classes: list[str] | None = None


@dataclass
class Failure:
    """An item that could not be scored, and why (file and line point at the offending input)."""

    task: str
    reason: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "_id": self.id, "reason": self.reason}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else (self.file or self.task)
        what = f" field '{self.field}'" if self.field else ""
        ident = f" (_id {self.id})" if self.id else ""
        return f"{where}:{what}{ident} {self.reason}"


class FailureSink(RejectSink):
    """The reject sink of one task's reads: each bad line becomes a `Failure` of that task."""

    def __init__(self, task: str, failures: list[Failure]):
        self.task = task
        self.failures = failures

    def add(self, reason: str, *, file: str | None = None, line: int | None = None, field_name: str | None = None,
            record_id: str | None = None, raw: Any = None) -> None:
        self.failures.append(Failure(self.task, reason, file, line, field_name, record_id))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str_list(obj: dict[str, Any], key: str, *, required: bool, ints: bool = False) -> list[Any] | None:
    """A list of strings (and, with `ints`, integers) under `key`; None when absent and not required."""
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError(key, "missing" if key not in obj else "is null")
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) or (ints and _is_int(v)) for v in value):
        kinds = "strings or integers" if ints else "strings"
        raise RecordError(key, f"must be a list of {kinds}, got {type(value).__name__}")
    return value


def check_common(obj: dict[str, Any], task: str, need_length: bool) -> tuple[list[str | int], int | None, list[str] | None]:
    """The fields data lines and prediction lines share: answers, length, all_classes. Answers may be
    integers: passage_count's are in LongBench's files, and the official scorer compares `str(gt)`."""
    answers = _str_list(obj, "answers", required=True, ints=True)
    if not answers:
        raise RecordError("answers", "is empty")
    length = obj.get("length")
    if length is None:
        if need_length:
            raise RecordError("length", "missing (LongBench-E buckets need it)")
    elif not _is_int(length):
        raise RecordError("length", f"must be an integer, got {length!r}")
    all_classes = _str_list(obj, "all_classes", required=metrics.TASK_METRIC[task] is metrics.CLASSIFICATION)
    return answers, length, all_classes


def parse_item(obj: dict[str, Any], task: str, *, need_length: bool = False, default_id: str = "") -> LongBenchItem:
    """Validate one data line; raises RecordError(field, reason)."""
    for key in ("input", "context"):
        if key not in obj:
            raise RecordError(key, "missing")
        if not isinstance(obj[key], str):
            raise RecordError(key, f"must be a string, got {type(obj[key]).__name__}")
    answers, length, all_classes = check_common(obj, task, need_length)
    rid = obj.get("_id", default_id)
    if not isinstance(rid, (str, int)) or isinstance(rid, bool) or rid == "":
        raise RecordError("_id", f"must be a non-empty string, got {rid!r}")
    return LongBenchItem(id=str(rid), task=task, input=obj["input"], context=obj["context"], answers=answers,
                         length=length, all_classes=all_classes)


def data_file(data_dir: str | os.PathLike, task: str, e: bool) -> Path:
    return Path(data_dir) / (f"{task}_e.jsonl" if e else f"{task}.jsonl")


def discover_tasks(data_dir: str | os.PathLike, e: bool) -> list[str]:
    """Known tasks that have a data file in `data_dir`, in LongBench's task order."""
    return [t for t in metrics.TASKS if data_file(data_dir, t, e).exists()]


def read_items(rows: Iterable[tuple[int, dict[str, Any]]], task: str, source: str, failures: list[Failure], *,
               e: bool = False, limit: int | None = None) -> list[LongBenchItem]:
    """Validate data rows; bad ones (and duplicate `_id`s) become Failures; keeps the first `limit` good ones."""
    items: list[LongBenchItem] = []
    seen: set[str] = set()
    for lineno, obj in rows:
        if limit is not None and len(items) >= limit:
            break
        try:
            item = parse_item(obj, task, need_length=e, default_id=f"{task}-{lineno}")
        except RecordError as err:
            rid = obj.get("_id")
            failures.append(Failure(task, f"bad data line: {err.reason}", source, lineno, err.field,
                                    str(rid) if rid is not None else None))
            continue
        if item.id in seen:
            failures.append(Failure(task, "bad data line: duplicate _id", source, lineno, "_id", item.id))
            continue
        seen.add(item.id)
        items.append(item)
    return items


def load_local(data_dir: str | os.PathLike, tasks: list[str], e: bool, failures: list[Failure],
               limit: int | None = None) -> dict[str, list[LongBenchItem]]:
    out: dict[str, list[LongBenchItem]] = {}
    for task in tasks:
        path = data_file(data_dir, task, e)
        if not path.exists():
            raise FileNotFoundError(f"LongBench data file not found: {path}")
        rows = ((row.line, row.record) for row in read_rows(path, FailureSink(task, failures)))
        out[task] = read_items(rows, task, str(path), failures, e=e, limit=limit)
    return out


def _hf_rows(hf_dataset: str, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of one LongBench config from the hub: `datasets.load_dataset`, or else the repository's
    `data.zip` (LongBench ships a loading script, which recent `datasets` no longer runs)."""
    import datasets

    try:
        ds = datasets.load_dataset(hf_dataset, name, split="test")
    except Exception as first:  # noqa: BLE001 - fall back to the raw files, and say why if that fails too
        log.info("load_dataset(%s, %s) failed (%s); reading the repository's data.zip", hf_dataset, name, first)
        yield from ((row.line, row.record) for row in read_rows(_hub_archive_file(hf_dataset, name, first)))
        return
    for i, row in enumerate(ds, start=1):
        yield i, dict(row)


def _hub_archive_file(hf_dataset: str, name: str, why: Exception) -> Path:
    """`<name>.jsonl` from the dataset repository's data.zip, extracted once into our cache."""
    import zipfile

    from huggingface_hub import hf_hub_download

    from longcurate.core.models import cache_dir

    target = cache_dir() / "longbench" / hf_dataset.replace("/", "--")
    path = next(iter(target.rglob(f"{name}.jsonl")), None) if target.exists() else None
    if path is None:
        archive = hf_hub_download(hf_dataset, "data.zip", repo_type="dataset")
        with zipfile.ZipFile(archive) as z:
            z.extractall(target)
        path = next(iter(target.rglob(f"{name}.jsonl")), None)
    if path is None:
        raise FileNotFoundError(f"{hf_dataset}: no {name}.jsonl in the dataset's data.zip") from why
    return path


def load_data(lb_cfg: LongBenchConfig, allow_download: bool, failures: list[Failure],
              limit: int | None = None) -> dict[str, list[LongBenchItem]]:
    """Data for the configured tasks: a local folder, else (only when downloads are allowed) the hub."""
    tasks = list(lb_cfg.tasks)
    for t in tasks:
        metrics.metric_for(t)  # unknown task names fail early, with the list of known ones
    if lb_cfg.data_dir:
        tasks = tasks or discover_tasks(lb_cfg.data_dir, lb_cfg.e)
        if not tasks:
            raise FileNotFoundError(f"no LongBench task files ({'<task>_e' if lb_cfg.e else '<task>'}.jsonl) "
                                    f"in {lb_cfg.data_dir}")
        return load_local(lb_cfg.data_dir, tasks, lb_cfg.e, failures, limit)
    if not allow_download:
        raise FileNotFoundError("LongBench needs eval.longbench.data_dir (a folder of <task>.jsonl files), "
                                "or allow_download=true to read the hub dataset")
    tasks = tasks or list(metrics.E_TASKS if lb_cfg.e else metrics.TASKS)
    out = {}
    for task in tasks:
        name = f"{task}_e" if lb_cfg.e else task
        out[task] = read_items(_hf_rows(lb_cfg.hf_dataset, name), task, f"hf:{lb_cfg.hf_dataset}/{name}",
                               failures, e=lb_cfg.e, limit=limit)
    return out


__all__ = ["LongBenchItem", "Failure", "FailureSink", "check_common", "parse_item", "data_file", "discover_tasks",
           "read_items", "load_local", "load_data"]
