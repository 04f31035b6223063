"""The merge of a score's part files: every input id scored exactly once (or rejected), in input order,
the scorer's and the shards' rejects gathered in one quarantine beside the merged file.

An id found twice with the same values (two runs that both scored it, e.g. a shard run twice) is
kept once and counted; the same id with different values is an error naming it, since there is no
way to tell which is right. A merge that would leave no score from a non-empty input stops (no file,
no marker) and says why: the reasons its samples were rejected, most frequent first.

The merge streams: one pass over the part files notes where each id's record is (file and byte
offset) and lets the finalizer see every record (HMG's min and max); the merged file is then written
in input order, one record read back, finalized and written at a time. Memory is a few dozen bytes
per id, whatever the records hold (CAM's per-segment lists).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Protocol, Sequence

from longcurate.core.errors import SettingsChanged, UserError
from longcurate.core.jsonl import atomic_open, dumps, rejected_path, write_jsonl
from longcurate.core.runner import StepSpec, step_state
from longcurate.select.shard import read_scores

log = logging.getLogger("longcurate.select")
_PART_BITS = 20  # `PartIndex.where` packs (byte offset, part number) into one int


class Finalizer(Protocol):
    """What the merge applies over the whole dataset: `observe` sees every kept record first, then
    `apply` makes each merged record (`hmg.HmgFinalizer`, `cam.CamFinalizer`); `changes` is False when
    `apply` returns every record as it is (then the merge copies its line)."""

    changes: bool

    def observe(self, record: dict[str, Any]) -> None: ...

    def apply(self, record: dict[str, Any]) -> dict[str, Any]: ...


def part_lines(path: Path) -> Iterator[tuple[bytes, int, dict[str, Any]]]:
    """(line's bytes, byte offset, record) of each line of a part file; a line that is not a JSON
    object is a UserError naming file and line (part files are written by this stage, never by hand)."""
    offset = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise UserError(f"{path}:{lineno}: invalid JSON ({e})") from None
            if not isinstance(obj, dict) or "id" not in obj:
                raise UserError(f"{path}:{lineno}: not a score record (a JSON object with an id)")
            yield raw, start, obj


@dataclass
class PartIndex:
    """Where each id's record is in the part files, the ids the scorer rejected (with its reason),
    and the ids found twice with the same values (`repeated`) or with other values (`conflicting`)."""

    paths: list[Path]
    where: dict[str, int] = field(default_factory=dict)
    scorer_rejected: dict[str, dict[str, Any]] = field(default_factory=dict)
    rewritten: set[str] = field(default_factory=set)  # ids whose line is not the canonical `dumps` of its record
    repeated: list[str] = field(default_factory=list)
    conflicting: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, paths: Sequence[Path], finalizer: Finalizer | None = None) -> "PartIndex":
        """One pass over the parts; a record the merge will copy as it is (`finalizer.changes` False) is
        checked to be in canonical form, so the merged file has the bytes `dumps` gives."""
        out = cls(list(paths))
        copies = finalizer is None or not finalizer.changes
        with ExitStack() as files:
            opened: dict[int, IO[bytes]] = {}
            for k, path in enumerate(out.paths):
                for raw, offset, obj in part_lines(path):
                    rid = str(obj["id"])
                    if rid in out.where:
                        first = json.loads(out.record_line(out.where[rid], opened, files))
                        (out.repeated if dumps(first) == dumps(obj) else out.conflicting).append(rid)
                        continue
                    out.where[rid] = offset << _PART_BITS | k
                    if copies and raw.rstrip(b"\n") != dumps(obj).encode("utf-8"):
                        out.rewritten.add(rid)
                    if "rejected" in obj:
                        out.scorer_rejected[rid] = {"field": obj.get("field"), "rejected": str(obj["rejected"])}
                    elif finalizer is not None:
                        finalizer.observe(obj)
        return out

    def record_line(self, packed: int, opened: dict[int, IO[bytes]], files: ExitStack) -> bytes:
        """The line at a packed (offset, part) position; part files are opened once each."""
        k, offset = packed & ((1 << _PART_BITS) - 1), packed >> _PART_BITS
        if k not in opened:
            opened[k] = files.enter_context(open(self.paths[k], "rb"))
        opened[k].seek(offset)
        return opened[k].readline()

    def scored(self) -> int:
        return len(self.where) - len(self.scorer_rejected)


def check_coverage(output: Path, expected: Sequence[str], parts: PartIndex, rejected_ids: set[str]) -> None:
    """Raise naming what is wrong when the parts do not cover the input exactly once."""
    wanted = set(expected)
    extra = sorted(i for i in parts.where if i not in wanted)
    missing = [i for i in expected if i not in parts.where and i not in rejected_ids]
    problems = []
    if parts.conflicting:
        problems.append(f"{len(parts.conflicting)} id(s) scored more than once with different values, "
                        f"e.g. {sorted(set(parts.conflicting))[:5]}")
    if extra:
        problems.append(f"{len(extra)} id(s) not in the input, e.g. {extra[:5]}")
    if missing:
        problems.append(f"{len(missing)} input id(s) neither scored nor rejected, e.g. {missing[:5]}")
    if problems:
        raise UserError(f"cannot merge {output}: " + "; ".join(problems))


def top_reasons(rejected: Sequence[dict[str, Any]], n: int = 5) -> str:
    """`empty response: 3, too long: 2` (the text before each reason's first ':'), most frequent first."""
    counts = Counter(str(r.get("reason") or "").split(":", 1)[0].strip() for r in rejected)
    return ", ".join(f"{k}: {v}" for k, v in counts.most_common(n))


def finished(part: StepSpec) -> bool:
    """Whether a part file is complete with the settings the merge asks for."""
    try:
        return step_state(part) is not None
    except SettingsChanged:  # finished, but with other settings
        return False


def merge_parts(output: Path, parts: Sequence[StepSpec], expected: Sequence[str], finalizer: Finalizer | None = None,
                source: str | None = None, line_of: Callable[[str], int | None] | None = None) -> dict[str, Any]:
    """The merge step's work: check every part is complete and every expected id is scored exactly
    once or rejected by its shard; write `output` in the order of `expected` (atomic, a record at a
    time) and the merged rejects beside it; return its stats (the step runner marks it). Records the
    scorer rejected go to the quarantine as lines of `source` (`line_of`: id -> line number)."""
    missing_parts = [str(p.output) for p in parts if not Path(p.output).exists()]
    if missing_parts:
        raise UserError(f"missing part files: {', '.join(missing_parts)}")
    unfinished = [str(p.output) for p in parts if not finished(p)]
    if unfinished:
        raise UserError(f"shards not finished (no .done marker with these settings): {', '.join(unfinished)}")
    found = PartIndex.read([Path(p.output) for p in parts], finalizer)
    rejected_lines: list[dict[str, Any]] = []
    for p in parts:
        rp = rejected_path(p.output)
        if rp.exists():
            rejected_lines.extend(read_scores(rp))
    check_coverage(output, expected, found, {str(r["id"]) for r in rejected_lines if r.get("id") is not None})
    if found.repeated:
        log.warning("%s: %d id(s) were scored twice with identical values; kept one of each, e.g. %s",
                    output, len(found.repeated), sorted(set(found.repeated))[:5])
    rejected_lines += [{"file": source, "line": line_of(rid) if line_of else None, "field": r["field"], "id": rid,
                        "reason": r["rejected"]} for rid, r in found.scorer_rejected.items()]
    rejected_lines.sort(key=lambda r: (r.get("line") or 0, r.get("id") or "", r.get("reason") or ""))
    _write_rejects(rejected_path(output), rejected_lines)
    if not found.scored() and rejected_lines:
        raise UserError(f"no sample could be scored into {output}: all {len(rejected_lines)} were rejected "
                        f"({top_reasons(rejected_lines)}); see {rejected_path(output)}")
    written = _write_merged(output, expected, found, finalizer)
    stats = {"scored": written, "rejected": len(rejected_lines), "shards": len(parts)}
    if found.repeated:
        stats["repeated_identical"] = len(set(found.repeated))
    return stats


def _write_merged(output: Path, expected: Sequence[str], found: PartIndex, finalizer: Finalizer | None) -> int:
    """The scored records in the order of `expected`, each read back from its part and finalized (or
    its line copied, when the finalizer changes nothing and the line is canonical)."""
    n = 0
    copies = finalizer is None or not finalizer.changes
    with ExitStack() as files, atomic_open(output, "wb", encoding=None) as out:
        opened: dict[int, IO[bytes]] = {}
        for rid in expected:
            if rid not in found.where or rid in found.scorer_rejected:
                continue
            line = found.record_line(found.where[rid], opened, files)
            if not copies or rid in found.rewritten:
                record = json.loads(line)
                line = (dumps(finalizer.apply(record) if finalizer is not None else record) + "\n").encode("utf-8")
            out.write(line if line.endswith(b"\n") else line + b"\n")
            n += 1
    return n


def _write_rejects(path: Path, lines: list[dict[str, Any]]) -> None:
    if lines:
        write_jsonl(path, lines)
    else:
        path.unlink(missing_ok=True)


__all__ = ["PartIndex", "Finalizer", "merge_parts", "finished", "check_coverage", "top_reasons"]
