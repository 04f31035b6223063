"""The merge of a score's part files: every input id scored exactly once (or rejected), in input order,
the scorer's and the shards' rejects gathered in one quarantine beside the merged file.

An id found twice with the same values (two runs that both scored it, e.g. a shard run twice) is
kept once and counted; the same id with different values is an error naming it, since there is no
way to tell which is right. A merge that would leave no score from a non-empty input stops (no file,
no marker) and says why: the reasons its samples were rejected, most frequent first.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from longcurate.core.errors import SettingsChanged, UserError
from longcurate.core.jsonl import dumps, rejected_path, write_jsonl
from longcurate.core.runner import StepSpec, step_state
from longcurate.select.shard import read_scores

log = logging.getLogger("longcurate.select")


@dataclass
class PartRecords:
    """Every part's records by id: repeats with the same values (`repeated`) and with other values
    (`conflicting`)."""

    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)
    conflicting: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, paths: Sequence[Path]) -> "PartRecords":
        out = cls()
        for p in paths:
            for obj in read_scores(p):
                rid = str(obj["id"])
                if rid not in out.by_id:
                    out.by_id[rid] = obj
                elif dumps(out.by_id[rid]) == dumps(obj):
                    out.repeated.append(rid)
                else:
                    out.conflicting.append(rid)
        return out


def check_coverage(output: Path, expected: Sequence[str], parts: PartRecords, rejected_ids: set[str]) -> None:
    """Raise naming what is wrong when the parts do not cover the input exactly once."""
    extra = sorted(set(parts.by_id) - set(expected))
    missing = [i for i in expected if i not in parts.by_id and i not in rejected_ids]
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


def merge_parts(output: Path, parts: Sequence[StepSpec], expected: Sequence[str],
                finalize: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
                source: str | None = None, lines: dict[str, int] | None = None) -> dict[str, Any]:
    """The merge step's work: check every part is complete and every expected id is scored exactly
    once or rejected by its shard; write `output` in the order of `expected` (atomic) and the merged
    rejects beside it; return its stats (the step runner marks it). Records the scorer rejected go to
    the quarantine as lines of `source` (`lines`: id -> line number)."""
    missing_parts = [str(p.output) for p in parts if not Path(p.output).exists()]
    if missing_parts:
        raise UserError(f"missing part files: {', '.join(missing_parts)}")
    unfinished = [str(p.output) for p in parts if not finished(p)]
    if unfinished:
        raise UserError(f"shards not finished (no .done marker with these settings): {', '.join(unfinished)}")
    found = PartRecords.read([Path(p.output) for p in parts])
    rejected_lines: list[dict[str, Any]] = []
    for p in parts:
        rp = rejected_path(p.output)
        if rp.exists():
            rejected_lines.extend(read_scores(rp))
    check_coverage(output, expected, found, {str(r["id"]) for r in rejected_lines if r.get("id") is not None})
    if found.repeated:
        log.warning("%s: %d id(s) were scored twice with identical values; kept one of each, e.g. %s",
                    output, len(found.repeated), sorted(set(found.repeated))[:5])
    records = [found.by_id[i] for i in expected if i in found.by_id]
    rejected_lines += [{"file": source, "line": (lines or {}).get(str(r["id"])), "field": r.get("field"),
                        "id": str(r["id"]), "reason": str(r["rejected"])} for r in records if "rejected" in r]
    records = [r for r in records if "rejected" not in r]
    rejected_lines.sort(key=lambda r: (r.get("line") or 0, r.get("id") or "", r.get("reason") or ""))
    _write_rejects(rejected_path(output), rejected_lines)
    if not records and rejected_lines:
        raise UserError(f"no sample could be scored into {output}: all {len(rejected_lines)} were rejected "
                        f"({top_reasons(rejected_lines)}); see {rejected_path(output)}")
    if finalize is not None:
        records = finalize(records)
    write_jsonl(output, records)
    stats = {"scored": len(records), "rejected": len(rejected_lines), "shards": len(parts)}
    if found.repeated:
        stats["repeated_identical"] = len(set(found.repeated))
    return stats


def _write_rejects(path: Path, lines: list[dict[str, Any]]) -> None:
    if lines:
        write_jsonl(path, lines)
    else:
        path.unlink(missing_ok=True)


__all__ = ["PartRecords", "merge_parts", "finished", "check_coverage", "top_reasons"]
