"""Generation backends behind one narrow batched interface: a list of requests in, results in the
same order out. Backends are chosen by name through a lazy import map, so `hf` never imports the
OpenAI SDK and `vllm` is only imported when asked for.

A request's prompt is either a string (the user turn) or a list of chat messages; the backend renders
it (chat template, FILM `[INST]` template, or raw text for `template: raw`), with the request's own
`template` when it has one. A failure on one item is a result with `error` set; the other items go on.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from longcurate.core.errors import UserError

if TYPE_CHECKING:
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.eval")


@dataclass
class GenRequest:
    id: str
    prompt: str | list[dict[str, str]]
    max_new_tokens: int = 128
    # Local backends render with this template instead of their own (LongBench: the one its prompt was
    # fitted for, `raw` for the continuation tasks).
    template: str | None = None
    # Token ids of the prompt already rendered under that template (LongBench measured them while
    # fitting the prompt): local backends use them instead of tokenizing again.
    ids: list[int] | None = field(default=None, repr=False)


@dataclass
class GenResult:
    id: str
    text: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Generator(Protocol):
    tokenizer: Any | None  # HF tokenizer when local, else None
    max_context: int

    def generate(self, requests: list[GenRequest]) -> list[GenResult]: ...


# name -> "module:factory"; each factory takes (run_cfg, model_name) and returns a Generator.
BACKENDS: dict[str, str] = {
    "hf": "longcurate.eval.hf_backend:from_config",
    "openai": "longcurate.eval.openai_backend:from_config",
    "vllm": "longcurate.eval.vllm_backend:from_config",
}


def make_generator(run_cfg: RunConfig, model: str | None = None) -> Generator:
    """Build the backend named by `eval.generate.backend` for `model` (default: `run_cfg.model`)."""
    name = run_cfg.eval.generate.backend
    if name not in BACKENDS:
        raise UserError(f"unknown generation backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    module_name, factory = BACKENDS[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, factory)(run_cfg, model or run_cfg.model)


def as_messages(prompt: str | list[dict[str, str]]) -> list[dict[str, str]]:
    """A string prompt is one user turn."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return list(prompt)


def render_prompt(prompt: str | list[dict[str, str]], tokenizer: Any | None, template: str) -> tuple[str, bool]:
    """Render a prompt to text for a local model. Returns (text, add_special_tokens).

    `chat`: the tokenizer's chat template with the generation prompt (FILM `[INST]` when it has none);
    `film`: always the FILM `[INST] ... [/INST]` template; `raw`: a string prompt as is (messages are
    joined with blank lines). A chat template writes its own special tokens, so none are added then.
    """
    from longcurate.core.prompts import film_chat

    if template not in ("chat", "film", "raw"):
        raise UserError(f"unknown prompt template {template!r}; use chat, film or raw")
    messages = as_messages(prompt)
    if template == "raw":
        text = prompt if isinstance(prompt, str) else "\n\n".join(m["content"] for m in messages)
        return text, True
    if template == "chat" and tokenizer is not None and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, False
    return film_chat(messages), True


def prompt_ids(prompt: str | list[dict[str, str]], tokenizer: Any, template: str) -> list[int]:
    """The token ids a local model is given for a prompt: rendered with `template`, then tokenized
    (what generation continues from, and what the answer NLL puts before the answer)."""
    text, special = render_prompt(prompt, tokenizer, template)
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def encode_for_local(request: "GenRequest", tokenizer: Any, template: str, max_context: int) -> list[int] | "GenResult":
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
