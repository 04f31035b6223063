"""Conversations: read records of any chat shape into one role/content form (`core.chat_formats`),
hash them for dedup, and render them to text with the character spans that carry the loss.

Rendering returns character spans (not tokens) so the tokenizer runs once per sample with offsets,
however many turns the conversation has; `tokenize.py` maps the spans onto tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from longcurate.core.chat_formats import InputFormat, read_chat
from longcurate.core.errors import UserError
from longcurate.core.prompts import CONTEXT_MARK, INSTRUCTION_MARK, film_chat
from longcurate.core.records import RecordError

Message = dict[str, str]
SOURCES = ("long", "short")  # a mixture sample is one of these


def parse_conversation(record: dict[str, Any], fmt: InputFormat | None = None) -> list[Message]:
    """A record's checked conversation, [{"role", "content"}, ...], in any shape `core.chat_formats`
    reads (messages, ShareGPT, alpaca, a sample's fields, columns mapped by `fmt`). Raises RecordError
    with the reason the quarantine counts: unknown role, turns that do not alternate, empty answer, ..."""
    return read_chat(record, fmt).messages


_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Unicode NFC, whitespace collapsed, stripped: copies that differ only in spacing hash the same."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text)).strip()


def conversation_hash(messages: list[Message]) -> str:
    """Content hash of the normalised conversation (roles + texts), for dedup across all sources."""
    canon = [[m["role"], normalize_text(m["content"])] for m in messages]
    return hashlib.sha256(json.dumps(canon, ensure_ascii=False).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Rendering


@dataclass
class Rendered:
    """A conversation as one string plus what the tokenizer needs to label and truncate it.

    `label_spans`: [start, end) character ranges of each assistant turn's content and end-of-turn
    marker (never the role header). `context_span`: the range that may be cut in the middle when the
    sample is too long (the long context of the first user turn), or None.
    """

    text: str
    label_spans: list[tuple[int, int]]
    context_span: tuple[int, int] | None
    add_special_tokens: bool  # chat templates write their own special tokens; plain text gets BOS etc.


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render(messages: list[Message], tokenizer: Any, template: str = "chat") -> Rendered:
    """Render with the tokenizer's chat template (`chat`; FILM when it has none) or FILM (`film`)."""
    if template not in ("chat", "film"):
        raise UserError(f"unknown template {template!r}; expected 'chat' or 'film'")
    if template == "chat" and has_chat_template(tokenizer):
        return render_chat_template(messages, tokenizer)
    return render_film(messages, getattr(tokenizer, "eos_token", None))


def apply_template(tokenizer: Any, messages: list[Message], generation_prompt: bool) -> str:
    """The chat template's text; a template that refuses the conversation becomes a RecordError."""
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as e:  # jinja2 TemplateError / raise_exception(): the template refuses this conversation
        raise RecordError("messages", f"chat template error: {e}") from None
    if not isinstance(text, str):
        raise TypeError("apply_chat_template(tokenize=False) did not return a string")
    return text


def render_chat_template(messages: list[Message], tokenizer: Any) -> Rendered:
    """Assistant spans by incremental prefix rendering: the text of messages[:i] with the generation
    prompt ends where assistant turn i's content starts; messages[:i+1] ends after its end-of-turn.
    Trailing whitespace after the end-of-turn marker (ChatML's newline) is not labelled."""
    full = apply_template(tokenizer, messages, False)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        head = apply_template(tokenizer, messages[:i], True)
        upto = apply_template(tokenizer, messages[:i + 1], False)
        if not full.startswith(head) or not full.startswith(upto):
            raise RecordError(f"messages[{i}]", "chat template renders a prefix of the conversation differently "
                                                "from the whole (use template: film)")
        content = m["content"].strip()
        start = full.find(content, len(head), len(upto))
        if start < 0:
            raise RecordError(f"messages[{i}].content", "chat template does not render the assistant content verbatim")
        end = len(upto.rstrip())
        spans.append((start, max(end, start + len(content))))
    return Rendered(full, spans, _context_span(messages, tokenizer, full), add_special_tokens=False)


def render_film(messages: list[Message], eos_token: str | None = None) -> Rendered:
    """FILM / Mistral `[INST] … [/INST] answer</s>` (core.prompts.film_chat), one piece per turn;
    the end-of-turn marker is the tokenizer's EOS so the model learns to stop. The label span starts
    at the space after `[/INST]`: BPE merges it into the answer's first word anyway."""
    text, spans, user_starts = "", [], []
    for m in messages:
        piece = film_chat([m])
        if m["role"] == "assistant":
            if eos_token and piece.endswith("</s>"):
                piece = piece[:-len("</s>")] + eos_token
            spans.append((len(text), len(text) + len(piece)))  # " answer</s>": the space after [/INST] too
        elif m["role"] == "user":
            user_starts.append(len(text) + piece.index(m["content"]))
        text += piece
    first_user = next((m for m in messages if m["role"] == "user"), None)
    context = None
    if first_user is not None:
        a, b = context_bounds(first_user["content"])
        context = (user_starts[0] + a, user_starts[0] + b) if b > a else None
    return Rendered(text, spans, context, add_special_tokens=True)


def _context_span(messages: list[Message], tokenizer: Any, full: str) -> tuple[int, int] | None:
    first = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    if first is None:
        return None
    head = apply_template(tokenizer, messages[:first], False) if first else ""
    content = messages[first]["content"]
    at = full.find(content, len(head) if full.startswith(head) else 0)
    if at < 0:
        return None
    a, b = context_bounds(content)
    return (at + a, at + b) if b > a else None


def context_bounds(user_text: str) -> tuple[int, int]:
    """Where the long context sits inside a user turn: between FILM's `### Context:` and the last
    `### Instruction:` marker (core.prompts.user_prompt); else everything before the last blank line
    (the LongAlign split, select's default `last-blank-line`); else nothing ((0, 0))."""
    c = user_text.find(CONTEXT_MARK)
    j = user_text.rfind(INSTRUCTION_MARK)
    if c >= 0 and j > c:
        return c + len(CONTEXT_MARK), j
    cut = user_text.rfind("\n\n")
    if cut > 0:
        return 0, cut
    return 0, 0
