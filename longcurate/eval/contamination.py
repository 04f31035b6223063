"""`longcurate check contamination`: does the training data contain what the evaluation asks for?

Eval side (held in memory, small): every item of each eval file with the texts that must not be
learnable from training: a probe's answer and key, a needle item's needle sentence, each answer of a
LongBench item, a held-out sample's response and the key phrases its question quotes
(`source.key_fragments`), or the fields named by `--answer-field` / `--key-field`.
Training side (streamed, never loaded whole): each record's texts are scanned once: its `messages`
(samples, mixtures) or `conversations` (ShareGPT) when present, else all its string fields.

Both sides are read by `core.reader.read_rows` (JSONL, JSON, Parquet, a datasets folder).

Per item: `exact` (one of its texts occurs in a training text, `core.overlap`: case- and
whitespace-normalised whole words, any length) and its share of 13-grams found in the training data.
Unusable lines on either side are quarantined and counted, as in every stage; a file that yields no
usable record at all (empty, compressed, another format) stops the check with a `UserError` naming it,
so a clean result always means something was checked.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from longcurate.core.errors import UserError
from longcurate.core.jsonl import Rejects, RejectSink, reject, rejected_path, write_json
from longcurate.core.overlap import NGRAM, OverlapIndex, normalize
from longcurate.core.reader import read_rows
from longcurate.core.records import RecordError

log = logging.getLogger("longcurate.eval")

TURN_LISTS = ("messages", "conversations")
# A text this short (a one-word cloze answer, a title) occurs in almost any large text: an exact match
# of it alone is counted apart, so a reader can tell it from a shared sentence.
SHORT_WORDS = 2


@dataclass
class EvalItem:
    """One evaluation item and the texts checked for it (field -> text)."""

    file: str
    id: str
    kind: str  # probe | needle | longbench | sample | fields
    task: str | None
    texts: dict[str, str]


@dataclass
class ItemOverlap:
    """What the training data shares with one item: which texts occur exactly, and its n-gram share."""

    file: str
    id: str
    kind: str
    task: str | None
    exact: bool
    exact_fields: list[str]
    exact_short: bool  # every text found exactly has <= SHORT_WORDS words (a common word or a name)
    ngrams: int
    ngrams_found: int
    share: float | None  # ngrams_found / ngrams over all its texts (None: no text is long enough)


@dataclass
class Contamination:
    """The whole check: what was read, and one overlap per eval item (in file and line order)."""

    train_files: list[str]
    eval_files: list[str]
    training_records: int
    training_words: int
    seconds: float
    items: list[ItemOverlap] = field(default_factory=list)
    n: int = NGRAM

    @property
    def exact(self) -> list[ItemOverlap]:
        return [it for it in self.items if it.exact]

    def groups(self) -> list[dict[str, Any]]:
        """Per eval file and kind: items, exact overlaps, mean n-gram share, the worst items."""
        keys: dict[tuple[str, str], list[ItemOverlap]] = {}
        for it in self.items:
            keys.setdefault((it.file, it.kind), []).append(it)
        out = []
        for (file, kind), items in keys.items():
            shares = [it.share for it in items if it.share is not None]
            worst = sorted((it for it in items if it.exact or it.ngrams_found),
                           key=lambda it: (not it.exact, -(it.share or 0.0), it.id))[:3]
            out.append({"file": file, "kind": kind, "items": len(items), "exact": sum(it.exact for it in items),
                        "exact_short": sum(it.exact and it.exact_short for it in items),
                        "mean_share": sum(shares) / len(shares) if shares else None,
                        "worst": [{"id": it.id, "exact_fields": it.exact_fields, "share": it.share} for it in worst]})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "train_files": self.train_files, "eval_files": self.eval_files,
                "training_records": self.training_records, "training_words": self.training_words,
                "seconds": round(self.seconds, 3), "exact_items": len(self.exact), "groups": self.groups(),
                "items": [asdict(it) for it in self.items]}


# --- the eval side ------------------------------------------------------------------------------

def _text(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise RecordError(name, "missing" if value is None else f"must be a string, got {type(value).__name__}")
    return value


def _texts(obj: dict[str, Any], name: str, label: str) -> dict[str, str]:
    """A field that is a string or a list of strings: {label: text} or {label[i]: text}."""
    value = obj.get(name)
    if isinstance(value, str):
        return {label: value}
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return {label: value[0]} if len(value) == 1 else {f"{label}[{i}]": v for i, v in enumerate(value)}
    raise RecordError(name, "missing" if value is None else "must be a string or a non-empty list of strings")


def item_of(obj: dict[str, Any], file: str, line: int, answer_field: str | None = None,
            key_field: str | None = None) -> EvalItem:
    """The item a line holds and the texts to check; the kind is recognised by its fields unless
    the fields are named. Raises RecordError for a line that is none of them."""
    rid = obj.get("id", obj.get("_id"))
    item_id = str(rid) if rid not in (None, "") else f"line {line}"
    if answer_field or key_field:
        texts = {**(_texts(obj, answer_field, "answer") if answer_field else {}),
                 **(_texts(obj, key_field, "key") if key_field else {})}
        return EvalItem(file, item_id, "fields", None, texts)
    if "needle" in obj:
        return EvalItem(file, item_id, "needle", None, {"needle": _text(obj, "needle")})
    if "answers" in obj:
        return EvalItem(file, item_id, "longbench", obj.get("dataset"), _texts(obj, "answers", "answer"))
    if "key" in obj and "task" in obj:
        return EvalItem(file, item_id, "probe", str(obj["task"]),
                        {"answer": _text(obj, "answer"), "key": _text(obj, "key")})
    if "response" in obj:  # a held-out sample: its response, and the key phrases its question quotes
        keys = (obj.get("source") or {}).get("key_fragments") if isinstance(obj.get("source"), dict) else None
        texts = {"answer": _text(obj, "response")}
        if isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys):
            texts.update(_texts({"keys": keys}, "keys", "key"))
        return EvalItem(file, item_id, "sample", obj.get("kind"), texts)
    raise RecordError("answer", "no answer: not a probe, needle, LongBench or sample line "
                                "(name its fields with --answer-field / --key-field)")


def read_eval_items(path: str | Path, rejects: RejectSink, answer_field: str | None = None,
                    key_field: str | None = None) -> list[EvalItem]:
    """Every usable item of one eval file; other lines go to `rejects` with file, line and field. A
    file without any is a `UserError`."""
    items, rows = [], 0
    for row in read_rows(path, rejects):
        line, obj = row.line, row.record
        rows += 1
        try:
            items.append(item_of(obj, str(path), line, answer_field, key_field))
        except RecordError as e:
            reject(rejects, e.reason, file=path, line=line, field_name=e.field,
                   record_id=str(obj.get("id", obj.get("_id", ""))) or None)
    if not items:
        raise UserError(nothing_read(path, "eval item", rows))
    return items


def nothing_read(path: str | Path, what: str, rows: int) -> str:
    """Why a file gave no usable record: empty, or records of another kind."""
    p = Path(path)
    if p.is_file() and p.stat().st_size == 0:
        return f"{p}: the file is empty (no {what} read)"
    if rows:
        return f"{p}: none of its {rows} records is a usable {what} (the quarantine says why)"
    return f"{p}: no record read (lines that are not JSON objects are in the quarantine)"


_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\x28\xb5\x2f\xfd", b"\xfd7zXZ", b"PK\x03\x04")  # gzip bzip2 zstd xz zip


def refuse_compressed(paths: Iterable[str | Path]) -> None:
    """A compressed file named like a record file is refused before it is read (its bytes would
    otherwise fill the quarantine, line by line)."""
    for path in paths:
        p = Path(path)
        if p.is_file() and p.suffix != ".parquet":
            with open(p, "rb") as f:
                head = f.read(6)
            if head.startswith(_COMPRESSED):
                raise UserError(f"{p}: a compressed file, not {p.suffix or 'a record file'}; decompress it first")


# --- the training side --------------------------------------------------------------------------

def record_text(obj: dict[str, Any]) -> str:
    """A training record's text, each part once: its turns (`messages`, or ShareGPT `conversations`)
    when it has them, else every string field. Raises RecordError when there is none."""
    for name in TURN_LISTS:
        turns = obj.get(name)
        if turns is None:
            continue
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise RecordError(name, "must be a list of turns")
        parts = [t.get("content", t.get("value")) for t in turns]
        parts = [p for p in parts if isinstance(p, str)]
        if not parts:
            raise RecordError(name, "no turn has text")
        return "\n".join(parts)
    parts = [v for v in obj.values() if isinstance(v, str)]
    if not parts:
        raise RecordError("messages", "no text: no messages, conversations or string fields")
    return "\n".join(parts)


def training_texts(paths: Iterable[str | Path], rejects: RejectSink) -> Iterator[str]:
    """One text per usable training record, file after file, streamed; a file without any is a
    `UserError`."""
    for path in paths:
        rows = used = 0
        for row in read_rows(path, rejects):
            line, obj = row.line, row.record
            rows += 1
            try:
                text = record_text(obj)
            except RecordError as e:
                reject(rejects, e.reason, file=path, line=line, field_name=e.field,
                       record_id=str(obj["id"]) if obj.get("id") is not None else None)
                continue
            used += 1
            yield text
        if not used:
            raise UserError(nothing_read(path, "training record", rows))


# --- the check ----------------------------------------------------------------------------------

def overlaps(items: list[EvalItem], texts: Iterable[str], *, n: int = NGRAM,
             progress: bool = False) -> tuple[list[ItemOverlap], OverlapIndex]:
    """Register every item's texts, stream the training texts through them, and sum per item."""
    from tqdm.auto import tqdm

    index = OverlapIndex(n=n)
    for i, it in enumerate(items):
        for name, text in it.texts.items():
            index.add(f"{i}\t{name}", text)
    for text in tqdm(texts, desc="contamination", unit="sample", disable=not progress):
        index.scan(text)
    found = index.results()
    out = []
    for i, it in enumerate(items):
        res = {name: found[f"{i}\t{name}"] for name in it.texts if f"{i}\t{name}" in found}
        grams = sum(r.ngrams for r in res.values())
        hits = sum(r.ngrams_found for r in res.values())
        exact = [name for name, r in res.items() if r.exact]
        short = all(len(normalize(it.texts[name]).split()) <= SHORT_WORDS for name in exact)
        out.append(ItemOverlap(it.file, it.id, it.kind, it.task, bool(exact), exact, bool(exact) and short, grams,
                               hits, hits / grams if grams else None))
    return out, index


def check_contamination(train: list[str | Path], evals: list[str | Path], rejects: RejectSink, *,
                        answer_field: str | None = None, key_field: str | None = None, n: int = NGRAM,
                        progress: bool = False) -> Contamination:
    """The check over whole files: every eval item against every training record."""
    if not train or not evals:
        raise UserError("check contamination needs at least one --train file and one --eval file")
    refuse_compressed([*train, *evals])
    items = [it for path in evals for it in read_eval_items(path, rejects, answer_field, key_field)]
    start = time.perf_counter()
    result, index = overlaps(items, training_texts(train, rejects), n=n, progress=progress)
    return Contamination([str(p) for p in train], [str(p) for p in evals], index.scanned_texts,
                         index.scanned_words, time.perf_counter() - start, result, n)


def run_check(train: list[str | Path], evals: list[str | Path], output: str | Path, *,
              answer_field: str | None = None, key_field: str | None = None,
              progress: bool = False) -> tuple[Contamination, Rejects]:
    """The check, its JSON at `output` and its quarantine beside it (`<output>.rejected.jsonl`)."""
    rejected_path(output).unlink(missing_ok=True)  # this run's bad lines replace the last run's
    with Rejects(rejected_path(output)) as rejects:
        result = check_contamination(train, evals, rejects, answer_field=answer_field, key_field=key_field,
                                     progress=progress)
    write_json(output, result.to_dict())
    if rejects.total:
        log.warning("check contamination: %s", rejects.summary())
    return result, rejects


def require_clean(result: dict[str, Any], where: str) -> None:
    """Raise UserError naming the items whose answer, key or needle the training data contains. A match
    only by a text of at most SHORT_WORDS words (a one-word cloze answer, a title) is reported in the
    table but does not fail the check: such words occur in any large text, so they cannot show that an
    item leaked."""
    bad = [it for it in result["items"] if it["exact"] and not it.get("exact_short")]
    if bad:
        names = ", ".join(f"{it['id']} ({'/'.join(it['exact_fields'])}, {it['file']})" for it in bad[:20])
        more = f" and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise UserError(f"{where}: {len(bad)} eval item(s) occur in the training data: {names}{more} "
                        "(see the check's JSON for every item)")


# --- what is printed ----------------------------------------------------------------------------

def _share(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _worst(group: dict[str, Any]) -> str:
    parts = [f"{w['id']} ({'exact: ' + ', '.join(w['exact_fields']) if w['exact_fields'] else _share(w['share'])})"
             for w in group["worst"]]
    return "; ".join(parts) or "–"


def format_table(result: Contamination) -> str:
    """One row per eval file and kind: items, exact overlaps, mean n-gram share, the worst items."""
    head = ["eval file", "kind", "items", "exact", f"exact, <= {SHORT_WORDS} words", f"mean {result.n}-gram share",
            "worst items"]
    rows = [[g["file"], g["kind"], str(g["items"]), str(g["exact"]), str(g["exact_short"]), _share(g["mean_share"]),
             _worst(g)]
            for g in result.groups()]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in [head, *rows]]
    lines.append(f"training data: {result.training_records} records, {result.training_words} words "
                 f"({', '.join(result.train_files)}) in {result.seconds:.1f} s")
    return "\n".join(lines)


def summary_line(result: dict[str, Any]) -> str:
    """The report's first line, from the check's JSON (`Contamination.to_dict()`)."""
    groups = result["groups"]
    items = sum(g["items"] for g in groups)
    kinds = ", ".join(f"{g['kind']} {g['exact']}/{g['items']}" for g in groups)
    short = sum(g.get("exact_short", 0) for g in groups)
    if short:
        kinds += (f"; {short} of them only by a text of at most {SHORT_WORDS} words, such as a one-word answer, "
                  "which occurs in most large texts")
    shares = [it["share"] for it in result["items"] if it["share"] is not None]
    mean = sum(shares) / len(shares) if shares else None
    return (f"**Contamination:** {result['exact_items']} of {items} eval items have an answer, key or needle "
            f"in the training data ({kinds}); mean {result['n']}-gram share {_share(mean)}; training data "
            f"{', '.join(f'`{f}`' for f in result['train_files'])} ({result['training_records']} records).")


__all__ = ["EvalItem", "ItemOverlap", "Contamination", "item_of", "read_eval_items", "nothing_read",
           "refuse_compressed", "record_text", "training_texts", "overlaps", "check_contamination", "run_check",
           "require_clean", "format_table", "summary_line"]
