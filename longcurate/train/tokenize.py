"""Tokenize a mixture into a `datasets` Arrow folder: input_ids + labels (-100 outside assistant
turns), one row per sample, never padded; over-long samples cut in the middle of their context or
skipped, and counted.

Labels come from character spans (chat.render) mapped onto tokens through the tokenizer's offsets,
so each sample is tokenized once (tests/oracles/train.py has the prefix-diff version the tests and
the benchmark compare against). The dataset is one step of the step runner (`tokenize_spec`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longcurate.core.errors import UserError
from longcurate.core.jsonl import RejectSink, Rejects
from longcurate.core.reader import read_rows, source_digest
from longcurate.core.records import RecordError, content_id
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.train.chat import SOURCES, Message, parse_conversation, render
from longcurate.train.config import OVERLONG
from longcurate.train.loss import IGNORE

IGNORE_INDEX = IGNORE  # the same -100, under the name the tests use
COLUMNS = ("id", "source", "input_ids", "labels", "length", "n_response_tokens")


@dataclass
class Encoded:
    """One tokenized sample; `status` is kept | truncated | skipped, `reason` says why it was skipped."""

    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    status: str = "kept"
    reason: str = ""
    original_length: int = 0

    @property
    def n_response_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def encode(messages: list[Message], tokenizer: Any, *, template: str = "chat", max_length: int = 8192,
           overlong: str = "truncate") -> Encoded:
    """Render, tokenize once with offsets, label the assistant spans, fit to `max_length`."""
    if overlong not in OVERLONG:
        raise UserError(f"overlong must be one of {OVERLONG}, got {overlong!r}")
    r = render(messages, tokenizer, template)
    enc = tokenizer(r.text, add_special_tokens=r.add_special_tokens, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    labels = _label(ids, offsets, r.label_spans)
    out = Encoded(ids, labels, original_length=len(ids))
    if len(ids) <= max_length:
        return out
    if overlong == "skip":
        return Encoded(status="skipped", reason=f"over max_length: {len(ids)} tokens > {max_length}",
                       original_length=len(ids))
    window = _context_tokens(offsets, labels, r.context_span)
    excess = len(ids) - max_length
    if window is None or window[1] - window[0] < excess:
        have = 0 if window is None else window[1] - window[0]
        return Encoded(status="skipped", original_length=len(ids),
                       reason=f"cannot truncate: {len(ids)} tokens > {max_length} and the context has only "
                              f"{have} tokens to cut")
    a, b = window
    keep = (b - a) - excess
    left, right = (keep + 1) // 2, keep // 2
    cut = slice(a + left, b - right)
    del ids[cut], labels[cut]
    return Encoded(ids, labels, status="truncated", original_length=out.original_length)


def _label(ids: list[int], offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    """Copy the id of every token that overlaps a span (one pass: tokens and spans are both sorted)."""
    labels = [IGNORE] * len(ids)
    spans = sorted(spans)
    k = 0
    for t, (s, e) in enumerate(offsets):
        if e <= s:  # special tokens added by the tokenizer (BOS) have no characters
            continue
        while k < len(spans) and spans[k][1] <= s:
            k += 1
        if k == len(spans):
            break
        if s < spans[k][1] and e > spans[k][0]:
            labels[t] = ids[t]
    return labels


def _context_tokens(offsets: list[tuple[int, int]], labels: list[int],
                    span: tuple[int, int] | None) -> tuple[int, int] | None:
    """[first, last+1) of the tokens lying wholly inside the context's characters (never a label)."""
    if span is None:
        return None
    ca, cb = span
    inside = [t for t, (s, e) in enumerate(offsets)
              if e > s and s >= ca and e <= cb and labels[t] == IGNORE]
    if not inside:
        return None
    return inside[0], inside[-1] + 1


# ---------------------------------------------------------------------------------------------
# The dataset


def _encode_row(row: dict[str, Any], tokenizer: Any, template: str, max_length: int, overlong: str) -> dict[str, Any]:
    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    try:
        e = encode(messages, tokenizer, template=template, max_length=max_length, overlong=overlong)
    except RecordError as err:  # a template that cannot render this conversation faithfully
        e, field_name = Encoded(status="rejected", reason=err.reason), err.field
    else:
        field_name = ""
    return {"input_ids": e.input_ids, "labels": e.labels, "length": len(e.input_ids),
            "n_response_tokens": e.n_response_tokens, "status": e.status, "reason": e.reason,
            "field": field_name, "original_length": e.original_length}


def _features():
    from datasets import Features, Sequence, Value

    return Features({"id": Value("string"), "source": Value("string"),
                     "line": Value("int64"), "input_ids": Sequence(Value("int32")), "labels": Sequence(Value("int32")),
                     "length": Value("int32"), "n_response_tokens": Value("int32"),
                     "status": Value("string"), "reason": Value("string"), "field": Value("string"),
                     "original_length": Value("int32")})


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """What decides the tokens: vocabulary, special tokens, chat template."""
    parts = [str(getattr(tokenizer, "name_or_path", "")), str(len(tokenizer)),
             str(getattr(tokenizer, "eos_token", "")), str(getattr(tokenizer, "bos_token", "")),
             str(getattr(tokenizer, "chat_template", "") or "")]
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]


def mixture_source(record: dict[str, Any]) -> str:
    """`long` or `short` as the mixture says; a record that names no mixture source (a budget or
    LongAlign file tokenized directly; a Sample's `source` is its provenance, a mapping) counts as long."""
    source = record.get("source")
    if not isinstance(source, str):
        return "long"
    if source not in SOURCES:
        raise RecordError("source", f"unknown source: {source!r} (expected {' or '.join(SOURCES)})")
    return source


def read_mixture(path: str | os.PathLike, rejects: RejectSink, limit: int | None,
                 allow_download: bool = False) -> list[dict[str, Any]]:
    """The mixture's rows (any source `core.reader.read_rows` reads); records without an id get their
    content id; a repeated id, an unknown source or a bad conversation is quarantined."""
    rows, seen = [], set()
    for row in read_rows(path, rejects, allow_download=allow_download):
        if limit is not None and len(rows) >= limit:
            break
        obj = row.record
        rid = obj.get("id")
        rid = content_id(obj) if rid is None or rid == "" else rid
        try:
            if not isinstance(rid, (str, int)) or isinstance(rid, bool):
                raise RecordError("id", f"must be a string or an integer, got {type(rid).__name__}")
            if str(rid) in seen:
                raise RecordError("id", f"duplicate id: {rid}")
            source = mixture_source(obj)
            messages = parse_conversation(obj)
        except RecordError as e:
            rejects.add(e.reason, file=row.file, line=row.line, field_name=e.field,
                        record_id=str(rid) if isinstance(rid, (str, int)) else None)
            continue
        seen.add(str(rid))
        rows.append({"id": str(rid), "source": source, "line": row.line, "messages": messages})
    return rows


def tokenize_spec(mixture_path: str | os.PathLike, output_dir: str | os.PathLike, tokenizer: Any, *, template: str,
                  max_length: int, overlong: str, limit: int | None) -> StepSpec:
    """The tokenized dataset as a step of the step runner. Policy `redo`: the dataset is wholly decided by the
    mixture's content, the tokenizer and these settings, so any change rebuilds it. Settings: the
    mixture's content digest (not its path), the tokenizer's fingerprint, template, max_length,
    overlong, limit (not num_proc: it gives the same rows). The marker `<output_dir>.done` holds the stats."""
    settings = {"mixture_sha256": source_digest(mixture_path) or str(mixture_path),
                "tokenizer": tokenizer_fingerprint(tokenizer), "template": template,
                "max_length": max_length, "overlong": overlong, "limit": limit}
    return StepSpec("train tokenize", Path(output_dir), settings)


def check_fast_tokenizer(tokenizer: Any) -> None:
    """The template, length and overlong policy are the config's to check (`TokenizeConfig`)."""
    if not getattr(tokenizer, "is_fast", True):
        raise UserError("tokenize needs a fast (Rust) tokenizer: labels come from its offset mapping")


def encode_rows(rows: list[dict[str, Any]], tokenizer: Any, *, template: str, max_length: int, overlong: str,
                num_proc: int, fingerprint: str, progress: bool):
    """`rows` encoded (`datasets.map`, `num_proc` processes): every row, with its status and reason."""
    from datasets import Dataset

    if not rows:
        return Dataset.from_dict({k: [] for k in _features()}, features=_features())
    return Dataset.from_list(rows).map(
        _encode_row, fn_kwargs={"tokenizer": tokenizer, "template": template, "max_length": max_length,
                                "overlong": overlong},
        remove_columns=["messages"], features=_features(), new_fingerprint=fingerprint,
        num_proc=num_proc if num_proc > 1 and len(rows) > 1 else None,
        desc="tokenize" if progress else None)


def keep_rows(ds, mixture_path: str, rejects: RejectSink) -> tuple[Any, list[int], Counter]:
    """The kept and truncated rows (the training columns only); rejected rows go to `rejects`, and
    skipped rows are counted by reason."""
    meta = ds.select_columns(["id", "line", "status", "reason", "field"]).to_dict()
    skipped_reasons: Counter = Counter()
    for rid, line, st, why, fname in zip(meta["id"], meta["line"], meta["status"], meta["reason"], meta["field"]):
        if st == "rejected":
            rejects.add(why, file=mixture_path, line=line, field_name=fname or None, record_id=rid)
        elif st == "skipped":
            skipped_reasons[why.split(":", 1)[0]] += 1
    keep = [i for i, st in enumerate(meta["status"]) if st in ("kept", "truncated")]
    return ds.select(keep), meta["status"], skipped_reasons


def tokenize_stats(kept, status: list[str], skipped_reasons: Counter, n_input: int, rejects: Rejects,
                   template: str) -> dict[str, Any]:
    cols = kept.select_columns(["length", "n_response_tokens", "source", "original_length"]).to_dict()
    lengths, n_resp, sources = cols["length"], cols["n_response_tokens"], cols["source"]
    return {
        "input": n_input,
        "kept": len(kept),
        "truncated": sum(1 for s in status if s == "truncated"),
        "skipped_samples": sum(1 for s in status if s == "skipped"),  # ("skipped": True = step already done)
        "skipped_by_reason": dict(sorted(skipped_reasons.items())),
        "tokens_cut": int(sum(cols["original_length"]) - sum(lengths)),
        "rejected": rejects.total,
        "rejected_by_reason": dict(sorted(rejects.counts.items())),
        "by_source": dict(sorted(Counter(sources).items())),
        "total_tokens": int(sum(lengths)),
        "response_tokens": int(sum(n_resp)),
        "max_length_seen": int(max(lengths, default=0)),
        "mean_length": round(sum(lengths) / len(lengths), 2) if lengths else 0.0,
        "zero_response_tokens": sum(1 for n in n_resp if n == 0),
        "template": template,
    }


def tokenize_mixture(mixture_path: str | os.PathLike, output_dir: str | os.PathLike, tokenizer, *,
                     template: str = "chat", max_length: int = 8192, overlong: str = "truncate", num_proc: int = 1,
                     limit: int | None = None, progress: bool = True, allow_download: bool = False) -> dict[str, Any]:
    """Write a `datasets` Arrow dataset (save_to_disk into a temp folder, then swapped in) with columns
    id, source ("long"/"short"), input_ids, labels, length, n_response_tokens; never padded. Returns
    stats (kept, truncated, skipped_samples, rejected by reason, total and response tokens), and
    `skipped: True` when it was already made (`tokenize_spec`). Malformed mixture lines go to
    `<output_dir>.rejected.jsonl`. The output is locked while it is made; a mixture none of whose
    records could be kept is a UserError (no dataset, no marker) that gives the reasons."""
    check_fast_tokenizer(tokenizer)
    spec = tokenize_spec(mixture_path, output_dir, tokenizer, template=template, max_length=max_length,
                         overlong=overlong, limit=limit)

    def tokenize(run: StepRun) -> dict[str, Any]:
        with Rejects(run.rejected) as rejects:
            rows = read_mixture(mixture_path, rejects, limit, allow_download)
            n_input = len(rows) + rejects.total
            fingerprint = hashlib.sha256(json.dumps(spec.settings, sort_keys=True).encode()).hexdigest()[:16]
            ds = encode_rows(rows, tokenizer, template=template, max_length=max_length, overlong=overlong,
                             num_proc=num_proc, fingerprint=fingerprint, progress=progress)
            kept, status, skipped_reasons = keep_rows(ds, str(mixture_path), rejects)
            stats = tokenize_stats(kept, status, skipped_reasons, n_input, rejects, template)
        if n_input and not len(kept):
            reasons = (rejects.counts + skipped_reasons).most_common(5)
            raise UserError(f"no sample of {mixture_path} could be tokenized ({n_input} read; "
                            + ", ".join(f"{k}: {v}" for k, v in reasons) + f"); see {run.rejected}")
        _save_atomic(kept.select_columns(list(COLUMNS)), run.output)
        return stats

    return run_step(spec, tokenize)


def _save_atomic(ds: Any, out: Path) -> None:
    """save_to_disk into a temp folder beside `out`, then swap folders (a reader never sees half a dataset)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        # an empty dataset saved with 0 shards cannot be loaded back: give it one
        ds.save_to_disk(str(tmp / "data"), num_shards=1 if len(ds) == 0 else None)
        if out.exists():
            os.replace(out, tmp / "old")  # removed with tmp below
        os.replace(tmp / "data", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
