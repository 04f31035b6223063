"""Prompt texts for the OpenAI-compatible QA backend (IN2-style fine-grained and multi-hop questions).

The passages are wrapped in `<passage id="N" title="...">` tags so a model (and the test server) can
tell them apart; evidence quotes are checked against the passages afterwards, so the prompt asks for
verbatim quotes. Bump PROMPT_VERSION whenever a text here changes: it is part of every cache key.
"""

from __future__ import annotations

from typing import Sequence

from longcurate.synth.qa import SegmentText

PROMPT_VERSION = "openai-qa-v1"

SYSTEM = (
    "You write reading-comprehension questions that are used to train language models on long "
    "documents. You answer with one JSON object and nothing else."
)

_STANDALONE_RULE = (
    "- The question must stand on its own. It will later be asked with the passages hidden among "
    "hundreds of unrelated passages, so name the people, places, things and dates it is about. Never "
    "write phrases such as \"based on the context\", \"according to the passage\", \"in the text\" or "
    "\"in passage 2\", and never refer to the passages themselves."
)

_JSON_RULES = (
    "- \"answer\": correct according to the passages, complete and concise (one to three sentences).\n"
    "- \"evidence\": a list of short quotes copied character for character from the passages (no "
    "changes, no ellipses, no added quotation marks), containing the facts the answer rests on.\n\n"
    "Reply with JSON only, exactly in this form:\n"
    "{\"question\": \"...\", \"answer\": \"...\", \"evidence\": [\"verbatim quote\", \"...\"]}"
)


def _passage(number: int, seg: SegmentText) -> str:
    title = seg.title.replace('"', "'")
    return f'<passage id="{number}" title="{title}">\n{seg.text}\n</passage>'


def fine_prompt(segment: SegmentText) -> str:
    """One segment -> a question highly specific to it, answerable from it alone."""
    return (
        "Here is a passage from a longer document.\n\n"
        f"{_passage(1, segment)}\n\n"
        "Write one question that is highly specific to this passage and can be answered from this "
        "passage alone, together with its answer.\n"
        "Rules:\n"
        f"{_STANDALONE_RULE}\n"
        "- Ask about a concrete detail (a name, number, date, cause, or relation) that only this passage "
        "gives, not about general knowledge.\n"
        f"{_JSON_RULES}"
    )


def multihop_prompt(segments: Sequence[SegmentText]) -> str:
    """>= 2 numbered segments -> a question whose answer needs facts from at least two of them."""
    if len(segments) < 2:
        raise ValueError("a multi-hop prompt needs at least two segments")
    body = "\n\n".join(_passage(i, s) for i, s in enumerate(segments, start=1))
    return (
        f"Here are {len(segments)} numbered passages.\n\n"
        f"{body}\n\n"
        "Write one question that can only be answered by combining information from at least two of "
        "these passages (for example a comparison, an order of events, or a shared property), together "
        "with its answer. Someone who reads only one of the passages must not be able to answer it.\n"
        "Rules:\n"
        f"{_STANDALONE_RULE}\n"
        f"{_JSON_RULES}\n"
        "The evidence must contain quotes from at least two different passages."
    )


def messages_for_request(kind: str, segments: Sequence[SegmentText]) -> list[dict[str, str]]:
    """The chat messages sent for one QA request."""
    if kind == "fine":
        if len(segments) != 1:
            raise ValueError(f"a fine-grained request takes exactly one segment, got {len(segments)}")
        user = fine_prompt(segments[0])
    elif kind == "multihop":
        user = multihop_prompt(segments)
    else:
        raise ValueError(f"unknown request kind {kind!r} (expected 'fine' or 'multihop')")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
