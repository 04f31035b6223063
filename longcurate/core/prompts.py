"""Prompt formats shared by synth (what the `messages` say), select (what is scored) and train/eval.

PROMPT_FORMAT_VERSION goes into run manifests: change it whenever a template's text changes.
"""

from __future__ import annotations

PROMPT_FORMAT_VERSION = "1"

# The IN2 / FILM instruction (docs/reference.md, "IN2 synthesis"), without the [INST] wrapper.
FILM_PREAMBLE = ("Below is a context and an instruction. Based on the information provided in the context, "
                 "write a response for the instruction.")


CONTEXT_MARK = "### Context:\n"  # what precedes the context in a FILM user turn ...
INSTRUCTION_MARK = "\n\n### Instruction:\n"  # ... and what follows it, before the instruction


def user_prompt(context: str, instruction: str) -> str:
    """The user turn of a long sample: FILM's preamble, the context, the instruction."""
    if not context:
        return instruction
    return f"{FILM_PREAMBLE}\n\n{CONTEXT_MARK}{context}{INSTRUCTION_MARK}{instruction}"


def film_chat(messages: list[dict[str, str]]) -> str:
    """Render a conversation in the [INST] ... [/INST] style (Mistral / FILM) when a tokenizer has no chat template."""
    out = []
    for m in messages:
        if m["role"] == "user":
            out.append(f"[INST] {m['content']} [/INST]")
        elif m["role"] == "assistant":
            out.append(f" {m['content']}</s>")
        elif m["role"] == "system":
            out.append(f"{m['content']}\n\n")
    return "".join(out)


def chat_text(tokenizer, messages: list[dict[str, str]]) -> str:
    """The chat-formatted text of a conversation (prompt + response): the tokenizer's chat template,
    or the FILM [INST] format for tokenizers without one. A sample's `length` counts its tokens."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return film_chat(messages)


def gateau_prefix(context: str, instruction: str) -> str:
    """The text before the response in GATEAU's released HMG scripts."""
    return "### Input:" + context + "\n\n ### Instruction: " + instruction + "\n\n ### Response: "


def gateau_text(context: str, instruction: str, response: str) -> str:
    return gateau_prefix(context, instruction) + response


def messages_for(context: str, instruction: str, response: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user_prompt(context, instruction)},
            {"role": "assistant", "content": response}]
