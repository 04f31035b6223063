"""Every chat shape users bring, read as one conversation: `[system?] + (user, assistant)+`.

Shapes (`InputFormat.shape`; `auto` tells them apart by their columns, in this order):

    sample     context / instruction / response (what synth writes; budget files)
    messages   `messages`: [{"role", "content"}, ...] (OpenAI, LongAlign-10k)
    sharegpt   `conversations`: [{"from", "value"}, ...] (ShareGPT, FastChat, LLaMA-Factory)
    alpaca     instruction / input / output (+ optional `history` pairs and `system`)

Anything else is described the way LLaMA-Factory's `dataset_info.json` does it: `columns` maps our
names to the file's (`{messages: dialog, system: sys_prompt}` or `{instruction: question, input:
document, output: answer}`), `role_key` / `content_key` name a turn's keys, and `roles` adds speaker
names to the usual ones (`ROLE_NAMES`).

What is normalised, and noted on the conversation (`Chat.notes`) so stages count it: a top-level
`system` becomes the first turn; a leading assistant turn (ShareGPT dumps often open with the bot's
greeting) and an unanswered last user turn are dropped. What cannot be used raises `RecordError`
naming the field (unknown role, turns that do not alternate, an empty answer), so the record is
quarantined with its reason. An alpaca turn is `instruction`, a blank line, then `input` (alpaca's
order; LLaMA-Factory joins them too); its `input` and `instruction` stay known (`Chat.parts`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from longcurate.core.prompts import user_prompt
from longcurate.core.records import RecordError, content_id
from longcurate.core.rules import each_of, one_of, require

Message = dict[str, str]
SHAPES = ("auto", "sample", "messages", "sharegpt", "alpaca")
COLUMNS = ("id", "messages", "system", "instruction", "input", "output", "history", "context", "response")
ROLES = ("user", "assistant", "system")
# Speaker names -> roles (OpenAI, ShareGPT / FastChat, Gemini's "model").
ROLE_NAMES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "chatgpt": "assistant",
              "bing": "assistant", "bard": "assistant", "model": "assistant", "system": "system"}
LEADING_ASSISTANT = "leading assistant turn dropped"
TRAILING_USER = "unanswered last user turn dropped"
SYSTEM_KEPT = "top-level system kept"


@dataclass
class InputFormat:
    """How one input's records read as conversations (config: `select.input_format`,
    `train.mix.long_format`, `train.mix.short_format`)."""

    shape: str = "auto"  # auto | sample | messages | sharegpt | alpaca
    columns: dict[str, str] = field(default_factory=dict)  # our column name -> the file's (see COLUMNS)
    roles: dict[str, str] = field(default_factory=dict)  # the file's speaker name -> user | assistant | system
    role_key: str | None = None  # a turn's speaker key; default: role, else from
    content_key: str | None = None  # a turn's text key; default: content, else value

    def check(self, key: str) -> None:
        """The rules of an input format found at `key` (its section calls this from `__post_init__`)."""
        one_of(f"{key}.shape", self.shape, SHAPES)
        each_of(f"{key}.columns", list(self.columns), COLUMNS, empty=True)
        bad = {k: v for k, v in self.roles.items() if v not in ROLES}
        require(not bad, f"{key}.roles", f"must map speaker names to one of {list(ROLES)}, got {bad}")
        require((self.role_key is None) == (self.content_key is None), f"{key}.role_key",
                "and content_key name a turn's two keys: give both or neither")

    def role_of(self, speaker: str) -> str | None:
        own = {k.strip().lower(): v for k, v in self.roles.items()}
        name = speaker.strip().lower()
        return own.get(name) or ROLE_NAMES.get(name)


@dataclass
class Chat:
    """One record's conversation, checked: an optional system turn, then user/assistant pairs."""

    id: str
    messages: list[Message]
    shape: str  # the shape it was read as
    notes: list[str] = field(default_factory=list)  # normalisations applied (LEADING_ASSISTANT, ...)
    parts: tuple[str, str] | None = None  # (context, instruction) of the last user turn, when the record names them
    id_derived: bool = False  # the record had no id: `id` is its content id

    @property
    def exchanges(self) -> int:
        return sum(m["role"] == "assistant" for m in self.messages)


def conversation_id(messages: list[Message]) -> str:
    """A stable id from a conversation's turns (roles normalised): the same conversation gets the same
    id from every shape and container (`core.records.content_id` for the record fields' form)."""
    canon = [[m["role"], m["content"]] for m in messages]
    digest = hashlib.sha256(json.dumps(canon, ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"rec-{digest[:16]}"


def canonical(record: dict[str, Any], fmt: InputFormat) -> dict[str, Any]:
    """The record with the mapped columns renamed to ours (a mapped column wins over one of ours)."""
    if not isinstance(record, dict):
        raise RecordError("<record>", "not a JSON object")
    if not fmt.columns:
        return record
    out = {k: v for k, v in record.items() if k not in fmt.columns.values()}
    for ours, theirs in fmt.columns.items():
        if theirs in record:
            out[ours] = record[theirs]
    return out


def shape_of(record: dict[str, Any], fmt: InputFormat) -> str:
    """The record's shape: the configured one, or the first whose columns it has."""
    if fmt.shape != "auto":
        return fmt.shape
    if "context" in record or "response" in record:
        return "sample"
    if isinstance(record.get("messages"), list):
        return "messages"
    if isinstance(record.get("conversations"), list):
        return "sharegpt"
    if "output" in record and "instruction" in record:
        return "alpaca"
    raise RecordError("<record>", "no conversation: expected messages, conversations (ShareGPT), "
                                  "instruction/input/output (alpaca) or context/instruction/response; map other "
                                  f"columns with an input format's columns (have: {', '.join(sorted(map(str, record)))})")


def record_id(record: dict[str, Any]) -> str | None:
    """The record's own id (a string or an integer), None when it has none; another type is refused."""
    rid = record.get("id")
    if rid is None or rid == "":
        return None
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise RecordError("id", f"must be a string or an integer, got {type(rid).__name__}")
    return str(rid)


def read_chat(record: dict[str, Any], fmt: InputFormat | None = None) -> Chat:
    """The record's conversation in any shape, its columns mapped by `fmt`."""
    fmt = fmt or InputFormat()
    return chat_of(canonical(record, fmt), fmt)


@dataclass
class _Turns:
    """Turns as read, each with the fields that hold its role and its text (for error messages that
    name the input's own spelling: `conversations[3].value`, `output`)."""

    messages: list[Message] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)

    def add(self, role: str, content: str, role_field: str, text_field: str) -> None:
        self.messages.append({"role": role, "content": content})
        self.fields.append((role_field, text_field))

    def cut(self, start: int, stop: int | None = None) -> "_Turns":
        return _Turns(self.messages[start:stop], self.fields[start:stop])


def chat_of(rec: dict[str, Any], fmt: InputFormat) -> Chat:
    """The conversation of a record whose columns are ours already (`canonical`)."""
    shape = shape_of(rec, fmt)
    parts = None
    if shape == "sample":
        turns, parts = _sample_turns(rec)
    elif shape == "alpaca":
        turns, parts = _alpaca_turns(rec)
    else:
        turns = _listed_turns(rec, shape, fmt)
    turns, notes = _normalise(turns, _system(rec))
    rid = record_id(rec)
    derived = content_id(rec) if shape == "sample" else conversation_id(turns.messages)  # as select names them
    return Chat(rid or derived, turns.messages, shape, notes, parts, id_derived=rid is None)


def _system(rec: dict[str, Any]) -> str:
    system = rec.get("system")
    if system is not None and not isinstance(system, str):
        raise RecordError("system", "not a string")
    return system if system and system.strip() else ""


def _text(rec: dict[str, Any], key: str, required: bool = True) -> str:
    value = rec.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise RecordError(key, "missing or not a string")
    return value


def _sample_turns(rec: dict[str, Any]) -> tuple[_Turns, tuple[str, str]]:
    """A sample record's own `messages`, else the FILM prompt built from its fields."""
    context, instruction, response = (_text(rec, k) for k in ("context", "instruction", "response"))
    own = rec.get("messages")
    if isinstance(own, list) and own:
        return _listed_turns({"messages": own}, "messages", InputFormat()), (context, instruction)
    turns = _Turns()
    turns.add("user", user_prompt(context, instruction), "instruction", "instruction")
    turns.add("assistant", response, "response", "response")
    return turns, (context, instruction)


def alpaca_prompt(instruction: str, input_text: str) -> str:
    """An alpaca user turn: the instruction, a blank line, the input (when there is one)."""
    return f"{instruction}\n\n{input_text}" if input_text.strip() else instruction


def _alpaca_turns(rec: dict[str, Any]) -> tuple[_Turns, tuple[str, str]]:
    instruction, output = _text(rec, "instruction"), _text(rec, "output")
    input_text = _text(rec, "input", required=False)
    history = rec.get("history") or []
    if not isinstance(history, list):
        raise RecordError("history", "not a list of [instruction, answer] pairs")
    turns = _Turns()
    for i, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise RecordError(f"history[{i}]", "not an [instruction, answer] pair of strings")
        turns.add("user", pair[0], f"history[{i}]", f"history[{i}][0]")
        turns.add("assistant", pair[1], f"history[{i}]", f"history[{i}][1]")
    turns.add("user", alpaca_prompt(instruction, input_text), "instruction", "instruction")
    turns.add("assistant", output, "output", "output")
    return turns, (input_text if input_text.strip() else "", instruction)


def _listed_turns(rec: dict[str, Any], shape: str, fmt: InputFormat) -> _Turns:
    name = "messages" if shape == "messages" or "messages" in rec else "conversations"
    raw = rec.get(name)
    if not isinstance(raw, list) or not raw:
        raise RecordError(name, "no conversation: missing or empty list of turns")
    role_key, text_key = fmt.role_key, fmt.content_key
    if role_key is None or text_key is None:
        first = raw[0] if isinstance(raw[0], dict) else {}
        role_key, text_key = ("role", "content") if "role" in first else ("from", "value")
    turns = _Turns()
    for i, turn in enumerate(raw):
        where = f"{name}[{i}]"
        if not isinstance(turn, dict):
            raise RecordError(where, "turn is not an object")
        speaker = turn.get(role_key)
        if not isinstance(speaker, str):
            raise RecordError(f"{where}.{role_key}", "missing role")
        role = fmt.role_of(speaker)
        if role is None:
            raise RecordError(f"{where}.{role_key}", f"unknown role: {speaker!r} (name it in an input format's roles)")
        content = turn.get(text_key)
        if not isinstance(content, str):
            raise RecordError(f"{where}.{text_key}", "content is not a string")
        turns.add(role, content, f"{where}.{role_key}", f"{where}.{text_key}")
    return turns


def _normalise(turns: _Turns, system: str) -> tuple[_Turns, list[str]]:
    """System first (the top-level one, or a first system turn), a leading assistant turn and an
    unanswered last user turn dropped; then `check_turns`."""
    notes: list[str] = []
    head = _Turns()
    if turns.messages and turns.messages[0]["role"] == "system":
        head, turns = turns.cut(0, 1), turns.cut(1)
    if system:
        if head.messages and head.messages[0]["content"].strip() != system.strip():
            raise RecordError("system", "a top-level system and a different system turn: keep one")
        if not head.messages:
            notes.append(SYSTEM_KEPT)
            head.add("system", system, "system", "system")
    while turns.messages and turns.messages[0]["role"] == "assistant":
        turns = turns.cut(1)
        notes.append(LEADING_ASSISTANT)
    if turns.messages and turns.messages[-1]["role"] == "user":
        turns = turns.cut(0, -1)
        notes.append(TRAILING_USER)
    out = _Turns(head.messages + turns.messages, head.fields + turns.fields)
    check_turns(out.messages, out.fields)
    return out, notes


def check_turns(messages: list[Message], fields: list[tuple[str, str]] | None = None) -> None:
    """An optional leading system turn, then user/assistant alternating, ending with the assistant.
    `fields` name each turn's role and text fields as the input spells them (default `messages[i]`)."""
    fields = fields or [(f"messages[{i}].role", f"messages[{i}].content") for i in range(len(messages))]
    start = 1 if messages and messages[0]["role"] == "system" else 0
    for i in range(start, len(messages)):
        if messages[i]["role"] == "system":
            raise RecordError(fields[i][0], "misplaced system turn: only the first turn may be system")
    if len(messages) == start:
        raise RecordError("messages", "no user turn with an answer")
    for i in range(start, len(messages)):
        m, want = messages[i], ("user" if (i - start) % 2 == 0 else "assistant")
        if m["role"] != want:
            raise RecordError(fields[i][0], f"turns do not alternate: expected {want}, found {m['role']}")
        if not m["content"].strip():
            raise RecordError(fields[i][1], f"empty {m['role']} turn")


__all__ = ["InputFormat", "Chat", "read_chat", "chat_of", "canonical", "shape_of", "record_id", "conversation_id",
           "check_turns", "alpaca_prompt", "ROLE_NAMES", "SHAPES", "COLUMNS", "LEADING_ASSISTANT", "TRAILING_USER",
           "SYSTEM_KEPT"]
