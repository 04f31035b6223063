"""Typed records passed between stages as JSONL lines.

Validation lives here so every stage rejects the same malformed input with the same reason.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("fine", "multihop", "short")


class RecordError(ValueError):
    """A record that cannot be used; `field` names the offending key."""

    def __init__(self, field_name: str, reason: str):
        super().__init__(f"field '{field_name}': {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True)
class GoldSpan:
    """Where a piece of the answer's evidence sits in the context (character offsets, end exclusive)."""

    segment: int
    char_start: int
    char_end: int


@dataclass
class Sample:
    """A long SFT sample: context + instruction -> response, in LongAlign `messages` form too.

    `kind` and `length` are None when the input does not say (a LongAlign or ShareGPT record): never
    invented; token counts then come from scoring. A sample cut from a longer conversation keeps the
    turns around its scored exchange: `turns_before` (a system turn, earlier exchanges) precede the
    user turn that holds the context, `turns_after` come between it and the scored `response`
    (`select.conversations`); `messages` is the whole conversation."""

    id: str
    context: str
    instruction: str
    response: str
    messages: list[dict[str, str]]
    kind: str | None = None
    gold: list[GoldSpan] = field(default_factory=list)
    num_segments: int = 0
    length: int | None = None
    source: dict[str, Any] = field(default_factory=dict)
    turns_before: list[dict[str, str]] = field(default_factory=list)
    turns_after: list[dict[str, str]] = field(default_factory=list)
    # A planted sample's type and where its evidence sits relative to θ_A's view (core.planted);
    # absent from records that were not planted, so their bytes do not change.
    planted: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Keep the documented key order: id, kind, context, instruction, response, messages, gold, ...;
        # the surrounding turns only when there are any.
        order = ["id", "kind", "context", "instruction", "response", "messages", "gold",
                 "num_segments", "length", "source"]
        order += [k for k in ("turns_before", "turns_after") if d[k]]
        order += ["planted"] if self.planted is not None else []
        return {k: d[k] for k in order}

    @property
    def multi_turn(self) -> bool:
        return bool(self.turns_after) or any(m["role"] != "system" for m in self.turns_before)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Sample":
        """Validate and build a sample from its fields (context, instruction, response); a record with
        only a conversation is cut into one by `select.conversations`."""
        if not isinstance(d, dict):
            raise RecordError("<record>", "not a JSON object")
        rid = d.get("id")
        if rid is None or rid == "":
            rid = content_id(d)  # LongAlign-10k and many chat sets have no ids: a stable one from the text
            d = {**d, "source": {**dict(d.get("source") or {}), "id": "content"}}
        elif not isinstance(rid, (str, int)) or isinstance(rid, bool):
            raise RecordError("id", f"must be a string or an integer, got {type(rid).__name__}")
        for key in ("context", "instruction", "response"):
            if not isinstance(d.get(key), str):
                raise RecordError(key, "missing or not a string")
        if not d["response"].strip():
            raise RecordError("response", "empty response")
        if not d["instruction"].strip():
            raise RecordError("instruction", "empty instruction")
        kind = d.get("kind")
        if kind is not None and kind not in KINDS:
            raise RecordError("kind", f"unknown kind {kind!r}; expected one of {KINDS} (or none)")
        messages = d.get("messages") or []
        for key in ("messages", "turns_before", "turns_after"):
            _check_messages(d.get(key) or [], key)
        check_numbers(d)
        gold = []
        for i, g in enumerate(d.get("gold") or []):
            try:
                span = GoldSpan(int(g["segment"]), int(g["char_start"]), int(g["char_end"]))
            except (KeyError, TypeError, ValueError) as e:
                raise RecordError(f"gold[{i}]", f"malformed span ({e})") from None
            if not 0 <= span.char_start <= span.char_end <= len(d["context"]):
                raise RecordError(f"gold[{i}]", "offsets outside the context")
            gold.append(span)
        planted = d.get("planted")
        if planted is not None and not (isinstance(planted, dict) and isinstance(planted.get("type"), str)):
            raise RecordError("planted", "must be an object with a string 'type'")
        length = d.get("length")
        return cls(id=str(rid), kind=kind, context=d["context"], instruction=d["instruction"],
                   response=d["response"], messages=messages, gold=gold,
                   num_segments=int(d.get("num_segments") or 0), length=None if length is None else int(length),
                   source=dict(d.get("source") or {}), turns_before=list(d.get("turns_before") or []),
                   turns_after=list(d.get("turns_after") or []),
                   planted=dict(planted) if planted is not None else None)


COUNT_FIELDS = ("num_segments", "length")
GOLD_FIELDS = ("segment", "char_start", "char_end")


def is_count(value: object) -> bool:
    """A non-negative whole number (an integral float from Parquet or pandas counts; a bool does not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value >= 0 and value == int(value)


def check_numbers(record: dict[str, Any]) -> None:
    """Raise RecordError naming the field when a count or a gold offset is not a non-negative whole
    number (`Infinity`, `NaN`, `2.5`, `"long"`): such a record is quarantined, never converted."""
    for key in COUNT_FIELDS:
        value = record.get(key)
        if value is not None and not is_count(value):
            raise RecordError(key, f"not a non-negative whole number: {value!r}")
    gold = record.get("gold")
    for i, span in enumerate(gold if isinstance(gold, list) else []):
        for key in GOLD_FIELDS if isinstance(span, dict) else ():
            if not is_count(span.get(key)):
                raise RecordError(f"gold[{i}].{key}", f"not a non-negative whole number: {span.get(key)!r}")


def content_id(record: dict[str, Any]) -> str:
    """A stable id for a record that has none, from its text only: its turns as given (`messages`
    role/content, or `conversations` from/value), else context + instruction + response. The same record
    gets the same id in every stage and from every file format (JSONL, Parquet, datasets), since
    formats may add empty columns but not change the text. A conversation read through
    `core.chat_formats` is named by its normalised turns (`conversation_id`, the same digest), so a
    ShareGPT record and its `messages` form share an id."""
    turns = record.get("messages") or record.get("conversations")
    if isinstance(turns, list) and turns:
        canon: Any = [[str(t.get("role", t.get("from", ""))), str(t.get("content", t.get("value", "")))]
                      for t in turns if isinstance(t, dict)]
    else:
        canon = [str(record.get(k) or "") for k in ("context", "instruction", "response")]
    digest = hashlib.sha256(json.dumps(canon, ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"rec-{digest[:16]}"


def _check_messages(messages: Any, name: str = "messages") -> None:
    if not isinstance(messages, list):
        raise RecordError(name, "not a list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise RecordError(f"{name}[{i}]", "needs string 'role' and 'content'")
