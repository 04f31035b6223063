"""Build a training mixture: every long sample of the budget files (exactly the budget) plus short chat
data at a given size or short:long ratio, deduplicated by content hash, shuffled by seed.

Each mixture line is `{"id", "source": "long"|"short", "origin": <file>, "messages": [...]}`; the
completion marker beside it (`<output>.done`) counts, per input file, what was read, rejected (with
reasons, in `<output>.rejected.jsonl`), dropped as a duplicate and used — so a run shows that the 1k
budget trained on 1,000 long samples. Inputs are read by `core.reader.read_rows` (JSONL, JSON,
Parquet, `datasets` folders, each compressed or not, folders, globs, Hub ids with `allow_download`) in
any chat shape `core.chat_formats` reads (messages, ShareGPT, alpaca, a budget file's samples, columns
mapped by `train.mix.long_format` / `short_format`); a record without an id gets its content id, the id
the select stage gave it. A mixture that would be empty although its inputs held records stops with
the reasons (no file, no marker).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from longcurate.core.chat_formats import Chat, InputFormat, canonical, chat_of, shape_of
from longcurate.core.config import to_dict
from longcurate.core.errors import UserError
from longcurate.core.jsonl import RejectSink, Rejects, write_jsonl
from longcurate.core.reader import read_rows, source_digest, source_exists
from longcurate.core.records import RecordError, Sample
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.train.chat import SOURCES, Message, conversation_hash


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


def parse_record(record: dict[str, Any], source: str, fmt: InputFormat | None = None) -> Chat:
    """The record's checked conversation (`core.chat_formats`: messages, ShareGPT, alpaca, columns
    mapped by `fmt`; a budget file's sample record is first checked as select checks it, and its
    conversation is its `messages`, or the FILM user prompt built from its fields). A value that
    cannot be converted (a `length` of NaN, Infinity or "long") is a RecordError, so the record is
    quarantined."""
    fmt = fmt or InputFormat()
    try:
        rec = canonical(record, fmt)
        if source == "long" and shape_of(rec, fmt) == "sample":
            Sample.from_dict(rec)
        return chat_of(rec, fmt)
    except RecordError:
        raise
    except (ValueError, TypeError, OverflowError, KeyError) as e:
        raise RecordError("<record>", f"invalid value: {e}") from None


def quarantine_id(record: dict[str, Any]) -> str | None:
    """The id a rejected record is filed under: its own, when it has a usable one."""
    rid = record.get("id")
    return str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid) != "" else None


def read_conversations(path: str, source: str, rejects: Rejects, *, limit: int | None = None,
                       progress: bool = True, allow_download: bool = False, fmt: InputFormat | None = None
                       ) -> tuple[list[Conversation], dict[str, Any]]:
    """Parse one input; bad records go to `rejects` with file, line, field and reason. Its counts say
    what was read, kept and rejected, and how many conversations were normalised (a leading assistant
    turn dropped, a top-level system kept, ...)."""
    out: list[Conversation] = []
    before = rejects.total
    rows = 0
    notes: Counter = Counter()
    for row in tqdm(read_rows(path, rejects, allow_download=allow_download), desc=f"read {Path(path).name}",
                    unit=" rec", disable=not progress, leave=False):
        if limit is not None and len(out) >= limit:
            break
        rows += 1
        try:
            chat = parse_record(row.record, source, fmt)
        except RecordError as e:
            rejects.add(e.reason, file=row.file, line=row.line, field_name=e.field,
                        record_id=quarantine_id(row.record))
            continue
        notes.update(chat.notes)
        out.append(Conversation(chat.id, source, path, row.line, chat.messages, conversation_hash(chat.messages)))
    bad_lines = rejects.total - before - (rows - len(out))
    return out, {"read": rows + bad_lines, "valid": len(out), "rejected": rejects.total - before,
                 "normalised": dict(sorted(notes.items()))}


def mix_spec(long_paths: list[str], short_path: str | None, output: str | Path, *, short_size: int | None,
             short_ratio: float | None, seed: int, limit: int | None,
             formats: dict[str, InputFormat] | None = None) -> StepSpec:
    """The mixture as a step of the step runner. Policy `redo`: a mixture is cheap and wholly decided by its inputs
    and settings, so other inputs (content) or settings rebuild it. Settings: every input's content
    digest (`source_digest`) and path (the mixture's lines name it as their `origin`), short size /
    ratio, seed, limit, how each source's records read (`formats`: long / short input format). Its
    marker (`<output>.done`) holds the per-source counts."""
    formats = formats or {}
    settings = {"long": [{"path": p, "sha256": source_digest(p)} for p in long_paths],
                "short": {"path": str(short_path), "sha256": source_digest(short_path)} if short_path else None,
                "short_size": short_size, "short_ratio": short_ratio, "seed": seed, "limit": limit,
                "formats": {k: to_dict(formats.get(k) or InputFormat()) for k in SOURCES}}
    return StepSpec("train mix", Path(output), settings)


def check_mix_args(long_paths: list[str], short_path: str | None, short_size: int | None,
                   short_ratio: float | None, allow_download: bool = False) -> None:
    if not long_paths and short_path is None:
        raise UserError("nothing to mix: give at least one long (budget) file or a short file")
    for p in [*long_paths, *([str(short_path)] if short_path is not None else [])]:
        if not source_exists(p) and not allow_download:  # (a Hub id is checked when it is read)
            raise FileNotFoundError(2, "mixture input not found", p)


class Dedup:
    """Keeps the first of each conversation content (a later copy counts as a duplicate of its file) and
    rejects an id reused with other content."""

    def __init__(self, rejects: RejectSink):
        self.rejects = rejects
        self.hashes: set[str] = set()
        self.ids: set[str] = set()

    def unique(self, convs: list[Conversation], stats: dict[str, Any]) -> list[Conversation]:
        kept = []
        for c in convs:
            if c.hash in self.hashes:
                stats["duplicates"] += 1
                continue
            if c.id in self.ids:
                self.rejects.add(f"duplicate id: {c.id} (different content)", file=c.origin, line=c.line,
                                 field_name="id", record_id=c.id)
                stats["rejected"] += 1
                continue
            self.hashes.add(c.hash)
            self.ids.add(c.id)
            kept.append(c)
        return kept


def read_source(path: str, source: str, rejects: Rejects, dedup: Dedup, *, limit: int | None,
                progress: bool, allow_download: bool = False, fmt: InputFormat | None = None
                ) -> tuple[list[Conversation], dict[str, Any]]:
    """One input file's unique conversations and its counts (read, valid, rejected, duplicates)."""
    convs, stats = read_conversations(path, source, rejects, limit=limit, progress=progress,
                                      allow_download=allow_download, fmt=fmt)
    stats = {"source": source, **stats, "duplicates": 0}
    return dedup.unique(convs, stats), stats


def take_short(pool: list[Conversation], stats: dict[str, Any], n_long: int, *, short_size: int | None,
               short_ratio: float | None, seed: int) -> tuple[list[Conversation], int | None]:
    """The short samples drawn (by seed, kept in file order) and how many were asked for."""
    requested = None
    if short_size is not None:
        requested = short_size
    elif short_ratio is not None:
        requested = int(round(short_ratio * n_long))
    take = len(pool) if requested is None else min(requested, len(pool))
    chosen = sorted(random.Random(f"{seed}:short").sample(range(len(pool)), take))
    stats["available"] = len(pool)
    stats["used"] = take
    return [pool[i] for i in chosen], requested


@dataclass
class MixInputs:
    """What the mixture is made of: its long and short samples and the counts per input file."""

    long: list[Conversation]
    short: list[Conversation]
    requested: int | None
    per_file: dict[str, dict[str, Any]]


def read_inputs(long_paths: list[str], short_path: str | None, rejects: Rejects, *, short_size: int | None,
                short_ratio: float | None, seed: int, limit: int | None, progress: bool,
                allow_download: bool, formats: dict[str, InputFormat] | None = None) -> MixInputs:
    """Every long input whole, then the short samples drawn from the short input (each read in its
    input format: `formats["long"]`, `formats["short"]`)."""
    formats = formats or {}
    dedup = Dedup(rejects)
    per_file: dict[str, dict[str, Any]] = {}
    long: list[Conversation] = []
    short: list[Conversation] = []
    requested = None
    for p in long_paths:
        kept, per_file[p] = read_source(p, "long", rejects, dedup, limit=limit, progress=progress,
                                        allow_download=allow_download, fmt=formats.get("long"))
        per_file[p]["used"] = len(kept)
        long.extend(kept)
    if short_path is not None:
        pool, per_file[str(short_path)] = read_source(str(short_path), "short", rejects, dedup, limit=limit,
                                                      progress=progress, allow_download=allow_download,
                                                      fmt=formats.get("short"))
        short, requested = take_short(pool, per_file[str(short_path)], len(long), short_size=short_size,
                                      short_ratio=short_ratio, seed=seed)
    return MixInputs(long, short, requested, per_file)


def build_mixture(long_paths: list[str], short_path: str | None, output: str | Path, *,
                  short_size: int | None = None, short_ratio: float | None = None, seed: int = 0,
                  limit: int | None = None, progress: bool = True, allow_download: bool = False,
                  formats: dict[str, InputFormat] | None = None) -> dict[str, Any]:
    """Write the mixture JSONL (atomic) and its marker; return its stats (counts per source file,
    duplicates dropped, rejected by reason, short/long totals, `skipped` when it was already made).

    `limit` caps the valid records taken from each input file (quick runs). A re-run on the same input
    content and settings rewrites nothing (`mix_spec`). The output is locked while it is made."""
    long_paths = [str(p) for p in long_paths]
    check_mix_args(long_paths, short_path, short_size, short_ratio, allow_download)
    spec = mix_spec(long_paths, short_path, output, short_size=short_size, short_ratio=short_ratio, seed=seed,
                    limit=limit, formats=formats)

    def mix(run: StepRun) -> dict[str, Any]:
        with Rejects(run.rejected) as rejects:
            got = read_inputs(long_paths, short_path, rejects, short_size=short_size, short_ratio=short_ratio,
                              seed=seed, limit=limit, progress=progress, allow_download=allow_download,
                              formats=formats)
            stats = mix_stats(len(got.long), len(got.short), got.requested, got.per_file, rejects, run.rejected)
        files = got.per_file.values()
        if not any(s["valid"] for s in files) and any(s["read"] for s in files):
            reasons = ", ".join(f"{k}: {v}" for k, v in rejects.counts.most_common(5))
            raise UserError(f"the mixture would be empty: all {sum(s['read'] for s in files)} records of "
                            f"{', '.join(got.per_file)} were rejected ({reasons}); see {run.rejected}")
        mixture = got.long + got.short
        random.Random(f"{seed}:mix").shuffle(mixture)
        write_jsonl(run.output, (c.to_record() for c in mixture))
        return stats

    return run_step(spec, mix)


def mix_stats(n_long: int, n_short: int, requested: int | None, per_file: dict[str, dict[str, Any]],
              rejects: Rejects, rej_path: Path) -> dict[str, Any]:
    return {
        "long": n_long,
        "short": n_short,
        "total": n_long + n_short,
        "short_requested": requested,
        "short_shortfall": max(0, requested - n_short) if requested is not None else 0,
        "duplicates": sum(s["duplicates"] for s in per_file.values()),
        "rejected": rejects.total,
        "rejected_by_reason": dict(sorted(rejects.counts.items())),
        "rejected_file": str(rej_path) if rejects.total else None,
        "sources": per_file,
    }


def summary(stats: dict[str, Any]) -> str:
    """One line per source file and a total, for the CLI to print."""
    lines = []
    for path, s in stats["sources"].items():
        extra = f", available {s['available']}" if "available" in s else ""
        normalised = "".join(f", {n} {note}" for note, n in s.get("normalised", {}).items())
        lines.append(f"  {s['source']:5s} {path}: read {s['read']}, rejected {s['rejected']}, "
                     f"duplicates {s['duplicates']}{extra}, used {s['used']}{normalised}")
    reasons = ", ".join(f"{k}: {v}" for k, v in stats["rejected_by_reason"].items())
    lines.append(f"mixture: {stats['long']} long + {stats['short']} short = {stats['total']}"
                 + (f"; rejected {stats['rejected']} ({reasons})" if stats["rejected"] else "")
                 + (f"; {stats['short_shortfall']} fewer short than asked" if stats["short_shortfall"] else ""))
    return "\n".join(lines)


__all__ = ["build_mixture", "mix_spec", "read_conversations", "parse_record", "summary", "Conversation", "SOURCES"]
