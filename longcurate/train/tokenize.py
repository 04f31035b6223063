"""Tokenize a mixture into a `datasets` Arrow folder: input_ids + labels (-100 outside assistant
turns), one row per sample, never padded; over-long samples cut in the middle of their context or
skipped, and counted.

Labels come from character spans (chat.render) mapped onto tokens through the tokenizer's offsets,
so each sample is tokenized once; `encode_reference` is the straightforward prefix-diff version the
tests and the benchmark compare against.
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

from longcurate.core.jsonl import Rejects, file_digest, read_json_if_valid, read_jsonl, rejected_path, write_json
from longcurate.core.records import RecordError
from longcurate.train.chat import (SOURCES, Message, apply_template, has_chat_template, parse_conversation, render,
                                   render_film)
from longcurate.train.loss import IGNORE

IGNORE_INDEX = IGNORE  # the same -100, under the name the tests use
OVERLONG = ("truncate", "skip")
STATS_FILE = "tokenize_stats.json"
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
        raise ValueError(f"overlong must be one of {OVERLONG}, got {overlong!r}")
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


def encode_reference(messages: list[Message], tokenizer: Any, *, template: str = "chat") -> Encoded:
    """Reference labelling without offsets: tokenize every rendered prefix and diff the token counts.

    Quadratic in the number of turns and sensitive to merges at prefix boundaries; kept to check
    `encode` and to measure it (benchmarks/tokenize_bench.py)."""
    def n_tokens(text: str, special: bool) -> int:
        return len(tokenizer(text, add_special_tokens=special)["input_ids"])

    if template == "chat" and has_chat_template(tokenizer):
        full = apply_template(tokenizer, messages, False)
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        labels = [IGNORE] * len(ids)
        for i, m in enumerate(messages):
            if m["role"] == "assistant":
                start = n_tokens(apply_template(tokenizer, messages[:i], True), False)
                end = n_tokens(apply_template(tokenizer, messages[:i + 1], False).rstrip(), False)
                labels[start:end] = ids[start:end]
        return Encoded(list(ids), labels, original_length=len(ids))
    r = render_film(messages, getattr(tokenizer, "eos_token", None))
    ids = tokenizer(r.text, add_special_tokens=True)["input_ids"]
    labels = [IGNORE] * len(ids)
    for a, b in r.label_spans:
        start, end = n_tokens(r.text[:a], True), n_tokens(r.text[:b], True)
        labels[start:end] = ids[start:end]
    return Encoded(list(ids), labels, original_length=len(ids))


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


def _read_mixture(path: str, rejects: Rejects, limit: int | None) -> list[dict[str, Any]]:
    rows, seen = [], set()
    for lineno, obj in read_jsonl(path, rejects):
        if limit is not None and len(rows) >= limit:
            break
        rid = obj.get("id")
        try:
            if not isinstance(rid, (str, int)) or str(rid) == "":
                raise RecordError("id", "missing or empty")
            if str(rid) in seen:
                raise RecordError("id", f"duplicate id: {rid}")
            if obj.get("source") not in SOURCES:
                raise RecordError("source", f"unknown source: {obj.get('source')!r} (expected {' or '.join(SOURCES)})")
            messages = parse_conversation(obj)
        except RecordError as e:
            rejects.add(e.reason, file=str(path), line=lineno, field_name=e.field,
                        record_id=str(rid) if rid is not None else None)
            continue
        seen.add(str(rid))
        rows.append({"id": str(rid), "source": obj["source"], "line": lineno, "messages": messages})
    return rows


def tokenize_mixture(mixture_path: str, output_dir: str, tokenizer, *, template: str = "chat",
                     max_length: int = 8192, overlong: str = "truncate", num_proc: int = 1,
                     limit: int | None = None, force: bool = False, progress: bool = True) -> dict:
    """Writes a `datasets` Arrow dataset (save_to_disk, atomic: build in a temp folder then rename) with
    columns id, source ("long"/"short"), input_ids, labels, length, n_response_tokens; never padded.
    Returns stats (kept, truncated, skipped, rejected by reason, total tokens, response tokens).

    A re-run with the same mixture bytes, tokenizer and settings returns the saved stats and redoes
    nothing (`force` rebuilds). Malformed mixture lines go to `<output_dir>.rejected.jsonl`."""
    from datasets import Dataset

    if overlong not in OVERLONG:
        raise ValueError(f"overlong must be one of {OVERLONG}, got {overlong!r}")
    if template not in ("chat", "film"):
        raise ValueError(f"template must be 'chat' or 'film', got {template!r}")
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    if not getattr(tokenizer, "is_fast", True):
        raise ValueError("tokenize needs a fast (Rust) tokenizer: labels come from its offset mapping")
    out = Path(output_dir)
    params = {"mixture": str(mixture_path), "mixture_sha256": file_digest(mixture_path),
              "tokenizer": tokenizer_fingerprint(tokenizer), "template": template,
              "max_length": max_length, "overlong": overlong, "limit": limit}
    previous = load_stats(out)
    if not force and previous is not None and previous.get("params") == params:
        return previous | {"resumed": True}

    rej_path = rejected_path(out)
    rej_path.unlink(missing_ok=True)
    with Rejects(rej_path) as rejects:
        rows = _read_mixture(str(mixture_path), rejects, limit)
        bad_lines = rejects.total
        fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        if rows:
            ds = Dataset.from_list(rows).map(
                _encode_row, fn_kwargs={"tokenizer": tokenizer, "template": template, "max_length": max_length,
                                        "overlong": overlong},
                remove_columns=["messages"], features=_features(), new_fingerprint=fingerprint,
                num_proc=num_proc if num_proc > 1 and len(rows) > 1 else None,
                desc="tokenize" if progress else None)
        else:
            ds = Dataset.from_dict({k: [] for k in _features()}, features=_features())
        meta = ds.select_columns(["id", "line", "status", "reason", "field"]).to_dict()
        skipped_reasons: Counter = Counter()
        for rid, line, st, why, fname in zip(meta["id"], meta["line"], meta["status"], meta["reason"], meta["field"]):
            if st == "rejected":
                rejects.add(why, file=str(mixture_path), line=line, field_name=fname or None, record_id=rid)
            elif st == "skipped":
                skipped_reasons[why.split(":", 1)[0]] += 1
        status = meta["status"]
        keep = [i for i, st in enumerate(status) if st in ("kept", "truncated")]
        final = ds.select(keep).select_columns(list(COLUMNS))
        cols = ds.select(keep).select_columns(["length", "n_response_tokens", "source", "original_length"]).to_dict()
        lengths, n_resp, sources = cols["length"], cols["n_response_tokens"], cols["source"]
        stats = {
            "params": params,
            "input": len(rows) + bad_lines,
            "kept": len(keep),
            "truncated": sum(1 for s in status if s == "truncated"),
            "skipped": sum(1 for s in status if s == "skipped"),
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
    _save_atomic(final, out, stats)
    return stats


def load_stats(output_dir: str | os.PathLike) -> dict | None:
    """The stats a finished tokenize run saved inside its dataset folder, or None."""
    return read_json_if_valid(Path(output_dir) / STATS_FILE)


def _save_atomic(ds: Any, out: Path, stats: dict) -> None:
    """save_to_disk into a temp folder beside `out`, write the stats last, then swap folders."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        # an empty dataset saved with 0 shards cannot be loaded back: give it one
        ds.save_to_disk(str(tmp / "data"), num_shards=1 if len(ds) == 0 else None)
        write_json(tmp / "data" / STATS_FILE, stats)
        if out.exists():
            os.replace(out, tmp / "old")  # removed with tmp below
        os.replace(tmp / "data", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
