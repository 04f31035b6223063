"""Build a training mixture: every long sample of the budget files (exactly the budget) plus short chat
data at a given size or short:long ratio, deduplicated by content hash, shuffled by seed.

Each mixture line is `{"id", "source": "long"|"short", "origin": <file>, "messages": [...]}`; the
manifest beside it counts, per input file, what was read, rejected (with reasons, in
`<output>.rejected.jsonl`), dropped as a duplicate and used — so a run shows that the 1k budget
trained on 1,000 long samples.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from longcurate.core.jsonl import (Rejects, file_digest, read_json_if_valid, read_jsonl, rejected_path, write_json,
                                   write_jsonl)
from longcurate.core.prompts import messages_for
from longcurate.core.records import RecordError, Sample
from longcurate.train.chat import SOURCES, Message, check_conversation, conversation_hash, parse_conversation


@dataclass
class Conversation:
    """A checked conversation ready for the mixture, with where it came from."""

    id: str
    source: str  # long | short
    origin: str  # the input file, as given
    line: int
    messages: list[Message]
    hash: str

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "origin": self.origin, "messages": self.messages}


def manifest_path(output: str | Path) -> Path:
    return Path(str(output) + ".manifest.json")


def parse_long(record: dict[str, Any]) -> list[Message]:
    """A budget-file record: a full Sample (validated by core.records) or a LongAlign `messages` record.
    Its conversation is the record's `messages`, or the FILM user prompt built from its fields."""
    if any(k in record for k in ("context", "instruction", "response")):
        sample = Sample.from_dict(record)
        messages = sample.messages or messages_for(sample.context, sample.instruction, sample.response)
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        check_conversation(messages)
        return messages
    return parse_conversation(record)


def record_id(record: dict[str, Any], origin: str, line: int) -> str:
    """The input's own id when it has one (kept through every stage), else `<file stem>:<line>`."""
    rid = record.get("id")
    if isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid) != "":
        return str(rid)
    return f"{Path(origin).stem}:{line}"


def read_conversations(path: str, source: str, rejects: Rejects, *, limit: int | None = None,
                       progress: bool = True) -> tuple[list[Conversation], dict[str, int]]:
    """Parse one input file; bad records go to `rejects` with file, line, field and reason."""
    parse = parse_long if source == "long" else parse_conversation
    out: list[Conversation] = []
    before = rejects.total
    lines = 0
    for lineno, obj in tqdm(read_jsonl(path, rejects), desc=f"read {Path(path).name}", unit=" rec",
                            disable=not progress, leave=False):
        if limit is not None and len(out) >= limit:
            break
        lines += 1
        rid = record_id(obj, path, lineno)
        try:
            messages = parse(obj)
        except RecordError as e:
            rejects.add(e.reason, file=path, line=lineno, field_name=e.field, record_id=rid)
            continue
        out.append(Conversation(rid, source, path, lineno, messages, conversation_hash(messages)))
    bad_lines = rejects.total - before - (lines - len(out))
    return out, {"read": lines + bad_lines, "valid": len(out), "rejected": rejects.total - before}


def build_mixture(long_paths: list[str], short_path: str | None, output: str, *, short_size: int | None = None,
                  short_ratio: float | None = None, seed: int = 0, limit: int | None = None,
                  force: bool = False, progress: bool = True) -> dict:
    """Writes the mixture JSONL (atomic) + `<output>.manifest.json`; returns the manifest dict
    (counts per source file, duplicates dropped, rejected by reason, short/long totals).

    `limit` caps the valid records taken from each input file (quick runs). A re-run on the same input
    bytes and settings returns the saved manifest without rewriting anything (`force` rebuilds)."""
    long_paths = [str(p) for p in long_paths]
    if not long_paths and short_path is None:
        raise ValueError("nothing to mix: give at least one long (budget) file or a short file")
    if short_size is not None and short_ratio is not None:
        raise ValueError("give short_size or short_ratio, not both")
    if short_size is not None and short_size < 0:
        raise ValueError(f"short_size must be >= 0, got {short_size}")
    if short_ratio is not None and short_ratio < 0:
        raise ValueError(f"short_ratio must be >= 0, got {short_ratio}")
    if short_path is None and (short_size or short_ratio):
        raise ValueError("short_size/short_ratio given but no short file")
    inputs = [*long_paths] + ([str(short_path)] if short_path is not None else [])
    for p in inputs:
        if not Path(p).is_file():
            raise FileNotFoundError(f"mixture input not found: {p}")
    output = str(output)
    params = {"long": [{"path": p, "sha256": file_digest(p)} for p in long_paths],
              "short": {"path": str(short_path), "sha256": file_digest(short_path)} if short_path else None,
              "short_size": short_size, "short_ratio": short_ratio, "seed": seed, "limit": limit}
    previous = _load_manifest(output)
    if (not force and previous is not None and previous.get("params") == params and Path(output).exists()
            and previous.get("output_sha256") == file_digest(output)):
        return previous | {"resumed": True}

    rej_path = rejected_path(output)
    rej_path.unlink(missing_ok=True)  # a stale quarantine from an earlier run must not linger
    seen_hash: set[str] = set()
    seen_id: set[str] = set()
    per_file: dict[str, dict[str, Any]] = {}

    def unique(convs: list[Conversation], stats: dict[str, Any]) -> list[Conversation]:
        kept = []
        for c in convs:
            if c.hash in seen_hash:
                stats["duplicates"] += 1
                continue
            if c.id in seen_id:
                rejects.add(f"duplicate id: {c.id} (different content)", file=c.origin, line=c.line,
                            field_name="id", record_id=c.id)
                stats["rejected"] += 1
                continue
            seen_hash.add(c.hash)
            seen_id.add(c.id)
            kept.append(c)
        return kept

    with Rejects(rej_path) as rejects:
        long: list[Conversation] = []
        for p in long_paths:
            convs, stats = read_conversations(p, "long", rejects, limit=limit, progress=progress)
            stats = {"source": "long", **stats, "duplicates": 0}
            kept = unique(convs, stats)
            stats["used"] = len(kept)
            per_file[p] = stats
            long.extend(kept)
        short: list[Conversation] = []
        requested = None
        if short_path is not None:
            sp = str(short_path)
            convs, stats = read_conversations(sp, "short", rejects, limit=limit, progress=progress)
            stats = {"source": "short", **stats, "duplicates": 0}
            pool = unique(convs, stats)
            if short_size is not None:
                requested = short_size
            elif short_ratio is not None:
                requested = int(round(short_ratio * len(long)))
            take = len(pool) if requested is None else min(requested, len(pool))
            chosen = sorted(random.Random(f"{seed}:short").sample(range(len(pool)), take))
            short = [pool[i] for i in chosen]
            stats["available"] = len(pool)
            stats["used"] = len(short)
            per_file[sp] = stats
        mixture = long + short
        random.Random(f"{seed}:mix").shuffle(mixture)
        write_jsonl(output, (c.to_record() for c in mixture))
        manifest = {
            "output": output,
            "params": params,
            "long": len(long),
            "short": len(short),
            "total": len(mixture),
            "short_requested": requested,
            "short_shortfall": max(0, requested - len(short)) if requested is not None else 0,
            "duplicates": sum(s["duplicates"] for s in per_file.values()),
            "rejected": rejects.total,
            "rejected_by_reason": dict(sorted(rejects.counts.items())),
            "rejected_file": str(rej_path) if rejects.total else None,
            "sources": per_file,
            "output_sha256": file_digest(output),
        }
    write_json(manifest_path(output), manifest)  # last: its presence means the mixture is complete
    return manifest


def _load_manifest(output: str) -> dict | None:
    return read_json_if_valid(manifest_path(output))


def summary(manifest: dict) -> str:
    """One line per source file and a total, for the CLI to print."""
    lines = []
    for path, s in manifest["sources"].items():
        extra = f", available {s['available']}" if "available" in s else ""
        lines.append(f"  {s['source']:5s} {path}: read {s['read']}, rejected {s['rejected']}, "
                     f"duplicates {s['duplicates']}{extra}, used {s['used']}")
    reasons = ", ".join(f"{k}: {v}" for k, v in manifest["rejected_by_reason"].items())
    lines.append(f"mixture: {manifest['long']} long + {manifest['short']} short = {manifest['total']}"
                 + (f"; rejected {manifest['rejected']} ({reasons})" if manifest["rejected"] else "")
                 + (f"; {manifest['short_shortfall']} fewer short than asked" if manifest["short_shortfall"] else ""))
    return "\n".join(lines)


__all__ = ["build_mixture", "read_conversations", "parse_long", "manifest_path", "summary", "Conversation",
           "SOURCES"]
