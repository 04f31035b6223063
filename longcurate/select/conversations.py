"""A record of any shape as one sample to score: which answer is scored, and where the context is.

Records with context / instruction / response (synth's, budget files) are samples already. Any other
shape (`core.chat_formats`: messages, ShareGPT, alpaca, mapped columns) is a conversation, cut into a
sample by two settings:

`select.turns`, which answer of a multi-turn conversation is scored:
    last    the last answer, given the whole conversation before it (the default: every earlier turn
            is in the prompt, so HMG's θ_A and θ_B see the same history and CAM's segments are the
            context's, wherever it sits in that history)
    first   the first answer, given the first user turn only (the released GATEAU scripts; later
            turns are ignored for scoring, and trained on all the same)

`select.split`, how the user turn that holds the context (the longest one before the scored answer;
in LongAlign-10k and most long-context sets, the first) divides into context and instruction:
    last-blank-line   the instruction is the text after the last blank line (GATEAU's released
                      `split('\\n\\n')[-1]`; LongAlign-10k's layout: document, blank line, question)
    first-blank-line  the instruction is the text before the first blank line (question or task
                      first, then the document: "Summarize the following paper.\\n\\n<paper>")
    film-markers      between FILM's `### Context:` and `### Instruction:` markers (IN2 / FILM
                      prompts, and this project's own mixtures); a turn without them is refused
    whole-turn        no context: the whole turn is the instruction (short chat data; HMG only, CAM
                      needs a context)
A turn with no blank line has no context under the blank-line rules (`<rule>: no blank line`).
An alpaca record names its parts (`input` is the context, `instruction` the instruction), and a
sample record has them as fields: no rule is needed (`fields`).

The sample records what was done in `source`: `shape`, `split`, `turns` (the conversation's number of
answers), `scored_turn` and the normalisations (`normalised`), and the scoring report counts them
(`InputReport`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from longcurate.core.chat_formats import Chat, InputFormat, canonical, chat_of, shape_of
from longcurate.core.prompts import CONTEXT_MARK, INSTRUCTION_MARK
from longcurate.core.records import KINDS, RecordError, Sample

SPLIT_RULES = ("last-blank-line", "first-blank-line", "film-markers", "whole-turn")
TURN_POLICIES = ("last", "first")
FIELDS = "fields"  # the split of records that name their parts


def split_turn(text: str, rule: str) -> tuple[str, str, str]:
    """(context, instruction, the rule as it applied) of a user turn (surrounding whitespace aside)."""
    text = text.strip()
    if rule == "whole-turn":
        return "", text, rule
    if rule == "film-markers":
        c, j = text.find(CONTEXT_MARK), text.rfind(INSTRUCTION_MARK)
        if c < 0 or j <= c:
            raise RecordError("messages", "no FILM markers (### Context: / ### Instruction:) in the user turn "
                                          "(select.split: film-markers)")
        return text[c + len(CONTEXT_MARK):j], text[j + len(INSTRUCTION_MARK):], rule
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {rule!r}")
    cut = text.rfind("\n\n") if rule == "last-blank-line" else text.find("\n\n")
    if cut < 0:
        return "", text, f"{rule}: no blank line"
    before, after = text[:cut].strip(), text[cut + 2:].strip()
    return (before, after, rule) if rule == "last-blank-line" else (after, before, rule)


def context_turn(chat: Chat, prompt_len: int, scored_last: bool, split: str) -> tuple[int, str, str, str]:
    """(index in the conversation, context, instruction, split applied) of the user turn that holds
    the context: the named parts' turn (the last user turn) when the record names them and the last
    answer is scored, else the longest user turn before the answer, cut by the split rule."""
    users = [i for i, m in enumerate(chat.messages[:prompt_len]) if m["role"] == "user"]
    if chat.parts is not None and scored_last:
        return users[-1], chat.parts[0], chat.parts[1], FIELDS
    at = max(users, key=lambda i: (len(chat.messages[i]["content"]), -i))
    return (at, *split_turn(chat.messages[at]["content"], split))


def sample_from_chat(chat: Chat, record: dict[str, Any], split: str, turns: str) -> Sample:
    """The sample `turns` picks out of a checked conversation, its context turn cut by `split`."""
    if turns not in TURN_POLICIES:
        raise ValueError(f"unknown turn policy {turns!r}")
    msgs = chat.messages
    answers = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
    k = answers[-1] if turns == "last" else answers[0]
    at, context, instruction, applied = context_turn(chat, k, k == answers[-1], split)
    own = record.get("source")
    source: dict[str, Any] = dict(own) if isinstance(own, dict) else ({"origin": own} if own else {})
    source.update(shape=chat.shape, split=applied, turns=len(answers), scored_turn=answers.index(k) + 1)
    if chat.notes:
        source["normalised"] = list(chat.notes)
    if chat.id_derived:
        source["id"] = "content"
    kind = record.get("kind")
    if kind is not None and kind not in KINDS:  # the input's own labels are kept, not read as ours
        source["kind"], kind = kind, None
    d = {"id": chat.id, "kind": kind, "context": context, "instruction": instruction, "response": msgs[k]["content"],
         "messages": msgs, "length": record.get("length"), "source": source,
         "turns_before": msgs[:at], "turns_after": msgs[at + 1:k]}
    return Sample.from_dict(d)


def sample_from_record(record: dict[str, Any], fmt: InputFormat, split: str, turns: str) -> Sample:
    """Any record as a sample: its fields when it has them (`Sample.from_dict`), else the sample
    `sample_from_chat` cuts from its conversation."""
    rec = canonical(record, fmt)
    if shape_of(rec, fmt) == "sample":
        return Sample.from_dict(rec)
    return sample_from_chat(chat_of(rec, fmt), rec, split, turns)


@dataclass(frozen=True)
class SampleReading:
    """How the select stage reads its input's records as samples (`select.input_format`,
    `select.split`, `select.turns`)."""

    fmt: InputFormat = field(default_factory=InputFormat)
    split: str = "last-blank-line"
    turns: str = "last"

    def sample(self, record: dict[str, Any]) -> Sample:
        return sample_from_record(record, self.fmt, self.split, self.turns)


@dataclass
class InputReport:
    """What the scored samples were made of: shapes, answers per conversation, split rules applied,
    normalisations, and the fields derived because the input lacks them. Stages print it and keep it
    in their stats."""

    samples: int = 0
    shapes: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)  # answers per conversation (1: single-turn)
    split: Counter = field(default_factory=Counter)
    normalised: Counter = field(default_factory=Counter)
    derived: Counter = field(default_factory=Counter)  # id (content id), length, kind

    @classmethod
    def of(cls, samples: list[tuple[int, Sample]]) -> "InputReport":
        report = cls()
        for _, s in samples:
            report.add(s)
        return report

    def add(self, s: Sample) -> None:
        self.samples += 1
        self.shapes[s.source.get("shape", "sample")] += 1
        self.answers[str(s.source.get("turns", 1))] += 1
        self.split[s.source.get("split", FIELDS)] += 1
        self.normalised.update(s.source.get("normalised") or [])
        self.derived.update(k for k, absent in (("id", s.source.get("id") == "content"), ("length", s.length is None),
                                                ("kind", s.kind is None)) if absent)

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "shapes": dict(self.shapes), "answers": dict(self.answers),
                "split": dict(self.split), "normalised": dict(self.normalised), "derived": dict(self.derived)}

    def format(self) -> str:
        def counts(c: Counter) -> str:
            return ", ".join(f"{k} ({v})" for k, v in sorted(c.items()))

        derived = {"id": "content id", "length": "absent: token counts come from scoring", "kind": "absent: unknown"}
        parts = [f"{self.samples} samples", f"shapes: {counts(self.shapes)}",
                 f"answers per conversation: {counts(self.answers)}", f"split: {counts(self.split)}"]
        if self.normalised:
            parts.append(f"normalised: {counts(self.normalised)}")
        if self.derived:
            parts.append("derived: " + ", ".join(f"{k} ({v}: {derived[k]})" for k, v in sorted(self.derived.items())))
        return "; ".join(parts)


__all__ = ["SPLIT_RULES", "TURN_POLICIES", "FIELDS", "split_turn", "sample_from_chat", "sample_from_record", "SampleReading",
           "InputReport"]
