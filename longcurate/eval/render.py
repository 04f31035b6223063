"""Prompts as local models are given them: a prompt (a string, the user turn, or a list of chat
messages) rendered with the chat template, FILM's `[INST]` template or as raw text, then tokenized.
Generation continues from exactly these ids, and the answer NLL puts the answer's tokens right after
them, so both see the same prompt.
"""

from __future__ import annotations

from typing import Any

from longcurate.core.engine import ScoreItem
from longcurate.core.errors import UserError
from longcurate.eval.backends import TEMPLATES
from longcurate.eval.model import GenRequest, GenResult, LLRequest, LLResult, Prompt, failed_ll


def as_messages(prompt: Prompt) -> list[dict[str, str]]:
    """A string prompt is one user turn."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return list(prompt)


def render_prompt(prompt: Prompt, tokenizer: Any | None, template: str) -> tuple[str, bool]:
    """Render a prompt to text for a local model. Returns (text, add_special_tokens).

    `chat`: the tokenizer's chat template with the generation prompt (FILM `[INST]` when it has none);
    `film`: always the FILM `[INST] ... [/INST]` template; `raw`: a string prompt as is (messages are
    joined with blank lines). A chat template writes its own special tokens, so none are added then.
    """
    from longcurate.core.prompts import film_chat

    if template not in TEMPLATES:
        raise UserError(f"unknown prompt template {template!r}; use {', '.join(TEMPLATES)}")
    messages = as_messages(prompt)
    if template == "raw":
        text = prompt if isinstance(prompt, str) else "\n\n".join(m["content"] for m in messages)
        return text, True
    if template == "chat" and tokenizer is not None and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, False
    return film_chat(messages), True


def prompt_ids(prompt: Prompt, tokenizer: Any, template: str) -> list[int]:
    """The token ids a local model is given for a prompt: rendered with `template`, then tokenized
    (what generation continues from, and what the answer NLL puts before the answer)."""
    text, special = render_prompt(prompt, tokenizer, template)
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def encode_for_local(request: GenRequest, tokenizer: Any, template: str, max_context: int) -> list[int] | GenResult:
    """Token ids of a request for a local backend (`request.ids`, else its prompt rendered with
    `request.template or template`), or a failed GenResult (bad prompt, or prompt + generation longer
    than the context) — that item fails alone, the others go on."""
    ids = request.ids
    if ids is None:
        try:
            ids = prompt_ids(request.prompt, tokenizer, request.template or template)
        except Exception as e:  # a malformed prompt fails its own item only
            return GenResult(request.id, "", f"prompt rendering failed: {type(e).__name__}: {e}")
    if len(ids) + request.max_new_tokens > max_context:
        return GenResult(request.id, "", f"prompt too long: {len(ids)} tokens + {request.max_new_tokens} new "
                                         f"> context limit {max_context}")
    return ids


def answer_sequence(request: LLRequest, tokenizer: Any, template: str) -> ScoreItem:
    """The scored sequence of an answer: the prompt as generation sees it, then the answer's own
    tokens (no end-of-turn marker); the loss covers the answer tokens only."""
    prompt = prompt_ids(request.prompt, tokenizer, template)
    answer = list(tokenizer(request.answer, add_special_tokens=False)["input_ids"])
    return ScoreItem(request.id, prompt + answer, len(prompt))


def unscorable(seq: ScoreItem, max_context: int) -> str | None:
    """Why an answer sequence cannot be scored by a local model (None when it can)."""
    if len(seq) == seq.response_start:
        return "empty answer: no answer tokens"
    if len(seq) > max_context:
        return f"too long: {len(seq)} tokens > context limit {max_context}"
    return None


def scorable_answers(requests: list[LLRequest], tokenizer: Any, template: str, max_context: int
                     ) -> tuple[list[LLResult | None], list[tuple[int, ScoreItem]]]:
    """A local backend's answers split before scoring: a result slot per request, already filled with
    the failure of each request that cannot be scored, and (index, sequence) of the ones that can."""
    results: list[LLResult | None] = [None] * len(requests)
    scored = []
    for i, r in enumerate(requests):
        seq = answer_sequence(r, tokenizer, template)
        why = unscorable(seq, max_context)
        if why is not None:
            results[i] = failed_ll(r, why)
        else:
            scored.append((i, seq))
    return results, scored


__all__ = ["as_messages", "render_prompt", "prompt_ids", "encode_for_local", "answer_sequence",
           "unscorable", "scorable_answers"]
