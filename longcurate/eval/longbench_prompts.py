"""LongBench prompts: per-task templates and generation lengths (ours, or LongBench's own
`dataset2prompt.json` / `dataset2maxlen.json` files), and LongBench's truncation in the middle,
fitted to what the model can take under the template it is rendered with."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from longcurate.core.errors import UserError
from longcurate.eval.render import render_prompt
from longcurate.eval.longbench_data import LongBenchItem
from longcurate.eval.longbench_defaults import DEFAULT_MAXLEN, DEFAULT_PROMPTS


def _load_json_map(path: str | os.PathLike, what: str, value_type: type) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: must be a JSON object {{task: {value_type.__name__}}}")
    for task, value in data.items():
        if not isinstance(value, value_type) or isinstance(value, bool):
            raise UserError(f"{path}: task {task!r}: {what} must be a {value_type.__name__}, got {value!r}")
    return data


def load_prompts(prompt_file: str | None = None) -> dict[str, str]:
    """Our templates, overridden task by task by a LongBench `dataset2prompt.json`-style file."""
    prompts = dict(DEFAULT_PROMPTS)
    if prompt_file:
        given = _load_json_map(prompt_file, "prompt template", str)
        for task, template in given.items():
            try:
                template.format(context="", input="")
            except (KeyError, IndexError, ValueError) as e:
                raise UserError(f"{prompt_file}: task {task!r}: the template may use only {{context}} and "
                                f"{{input}} (write literal braces as {{{{ }}}}): {type(e).__name__}: {e}") from None
        prompts.update(given)
    return prompts


def load_maxlens(maxlen_file: str | None = None) -> dict[str, int]:
    """Our generation lengths, overridden task by task by a `dataset2maxlen.json`-style file."""
    maxlens = dict(DEFAULT_MAXLEN)
    if maxlen_file:
        given = _load_json_map(maxlen_file, "max new tokens", int)
        bad = {k: v for k, v in given.items() if v < 1}
        if bad:
            raise UserError(f"{maxlen_file}: max new tokens must be >= 1: {bad}")
        maxlens.update(given)
    return maxlens


def build_prompt(template: str, item: LongBenchItem) -> str:
    return template.format(context=item.context, input=item.input)


def _middle(ids: list[int], tokenizer: Any, max_tokens: int) -> str:
    """The first and the last `max_tokens // 2` tokens of `ids`, decoded and joined."""
    half = max(0, max_tokens // 2)
    head = tokenizer.decode(ids[:half], skip_special_tokens=True)
    tail = tokenizer.decode(ids[len(ids) - half:], skip_special_tokens=True) if half else ""
    return head + tail


def truncate_middle(text: str, tokenizer: Any, max_tokens: int) -> tuple[str, bool]:
    """LongBench's truncation: when `text` has more than `max_tokens` tokens, keep the first and the last
    `max_tokens // 2` tokens (decoded back to text). Returns (text, truncated)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text, False
    return _middle(ids, tokenizer, max_tokens), True


def _rendered_ids(text: str, tokenizer: Any, template: str) -> list[int]:
    """The token ids the generator will see for `text` under `template` (chat turn, FILM or raw)."""
    rendered, special = render_prompt(text, tokenizer, template)
    return tokenizer(rendered, add_special_tokens=special)["input_ids"]


def fit_prompt(text: str, tokenizer: Any, *, max_input_tokens: int | None, max_context: int,
               max_new_tokens: int, template: str) -> tuple[str, bool]:
    """Truncate `text` in the middle so that the model can take it. Returns (text, truncated).

    With `max_input_tokens` set, that is the limit for the prompt text (LongBench's `max_length`).
    Otherwise the limit is what the context leaves after the generation budget *and* the template's own
    tokens: start from the budget and shrink by the measured overflow until the rendered prompt fits.
    The long text is tokenized once; each try renders only the (short) candidate.
    """
    text, truncated, _ = fit_prompt_ids(text, tokenizer, max_input_tokens=max_input_tokens,
                                        max_context=max_context, max_new_tokens=max_new_tokens, template=template)
    return text, truncated


def fit_prompt_ids(text: str, tokenizer: Any, *, max_input_tokens: int | None, max_context: int,
                   max_new_tokens: int, template: str) -> tuple[str, bool, list[int] | None]:
    """`fit_prompt`, plus the rendered prompt's ids when it measured them (None with `max_input_tokens`),
    so the backend need not render and tokenize the prompt again."""
    if max_input_tokens is not None:
        return (*truncate_middle(text, tokenizer, max_input_tokens), None)
    budget = max_context - max_new_tokens
    if budget < 2:
        raise ValueError(f"context limit {max_context} leaves no room for a prompt after {max_new_tokens} new tokens")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    limit = budget
    for _ in range(8):
        candidate = text if len(ids) <= limit else _middle(ids, tokenizer, limit)
        rendered = _rendered_ids(candidate, tokenizer, template)
        over = len(rendered) - budget
        if over <= 0:
            return candidate, len(ids) > limit, rendered
        limit = min(limit, len(ids)) - over
        if limit < 2:
            break
    raise ValueError(f"cannot fit the prompt into {budget} tokens with template {template!r}")


__all__ = ["load_prompts", "load_maxlens", "build_prompt", "truncate_middle", "fit_prompt", "fit_prompt_ids"]
