"""Prompt texts for the OpenAI-compatible QA backend (IN2-style fine-grained and multi-hop questions).

Fine-grained: one segment as a `<passage>`. Multi-hop, as IN2 builds it: several segments of ONE text,
given as numbered pieces (`<text title="..."><piece id="N">`, in the text's order) with the rule that
the question needs at least two of them; with `synth.multihop_source: cross` the segments come from
different documents and are given as numbered passages. Evidence quotes are checked against the
segments afterwards (`grounding.py`), so the prompts ask for verbatim quotes. The messages are part of
every cache key, so an edited text is a cache miss by itself; bump PROMPT_VERSION when what a reply
means changes without the text changing.
"""

from __future__ import annotations

from typing import Sequence

from longcurate.synth.qa import SegmentText

PROMPT_VERSION = "openai-qa-v1"

SYSTEM = (
    "You write reading-comprehension questions that are used to train language models on long "
    "documents. You answer with one JSON object and nothing else."
)



def _standalone_rule(unit: str = "passage") -> str:
    return (
        f"- The question must stand on its own. It will later be asked with the {unit}s hidden among "
        "hundreds of unrelated passages, so name the people, places, things and dates it is about. Never "
        "write phrases such as \"based on the context\", \"according to the passage\", \"in the text\" or "
        f"\"in {unit} 2\", and never refer to the {unit}s themselves."
    )


def _json_rules(unit: str = "passage") -> str:
    return (
        f"- \"answer\": correct according to the {unit}s, complete and concise (one to three sentences).\n"
        f"- \"evidence\": a list of short quotes copied character for character from the {unit}s (no "
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
        f"{_standalone_rule()}\n"
        "- Ask about a concrete detail (a name, number, date, cause, or relation) that only this passage "
        "gives, not about general knowledge.\n"
        f"{_json_rules()}"
    )


def _piece(number: int, seg: SegmentText) -> str:
    return f'<piece id="{number}">\n{seg.text}\n</piece>'


def same_text_prompt(segments: Sequence[SegmentText]) -> str:
    """IN2's multi-hop request: numbered pieces of one text -> a question that needs >= 2 pieces."""
    title = segments[0].title.replace('"', "'")
    body = "\n\n".join(_piece(i, s) for i, s in enumerate(segments, start=1))
    return (
        f"Here is a text, given as {len(segments)} numbered pieces in the order in which they occur in it "
        "(other parts of the text may lie between them).\n\n"
        f'<text title="{title}">\n{body}\n</text>\n\n'
        "Write one question whose answer requires the reader to connect information from at least two "
        "of these pieces (for example a cause and its effect, a sequence of events, a comparison, or an "
        "entity introduced in one piece and described in another), together with its answer. Someone "
        "who reads only one of the pieces must not be able to answer it.\n"
        "Rules:\n"
        f"{_standalone_rule('piece')}\n"
        f"{_json_rules('piece')}\n"
        "The evidence must contain quotes from at least two different pieces."
    )


def multihop_prompt(segments: Sequence[SegmentText]) -> str:
    """>= 2 numbered segments -> a question whose answer needs facts from at least two of them:
    pieces of one text (IN2) when they share a document, numbered passages otherwise."""
    if len(segments) < 2:
        raise ValueError("a multi-hop prompt needs at least two segments")
    if len({s.doc_id for s in segments}) == 1:
        return same_text_prompt(segments)
    body = "\n\n".join(_passage(i, s) for i, s in enumerate(segments, start=1))
    return (
        f"Here are {len(segments)} numbered passages.\n\n"
        f"{body}\n\n"
        "Write one question that can only be answered by combining information from at least two of "
        "these passages (for example a comparison, an order of events, or a shared property), together "
        "with its answer. Someone who reads only one of the passages must not be able to answer it.\n"
        "Rules:\n"
        f"{_standalone_rule()}\n"
        f"{_json_rules()}\n"
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
