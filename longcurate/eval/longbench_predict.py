"""LongBench predictions through the shared loop (`predict.py`), in LongBench's own file format.

    <label>/longbench/pred/<task>.jsonl    pred, answers, all_classes, length, _id, model, request_hash  (pred_e/ for -E)

LongBench's tools read `pred`, `answers`, `all_classes` and `length` and ignore the rest; `model` names
the model that made the line; `_id` and `request_hash` make the file resumable: a prediction is redone
when its prompt, its generation length or the generation settings (the model among them) change. Prompts are truncated in the middle to fit the model only when
something is left to predict (that needs the model's tokenizer), so a finished run loads nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from longcurate.core.eval_layout import LongBenchFiles
from longcurate.eval.longbench_data import LongBenchItem
from longcurate.eval.longbench_defaults import RAW_PROMPT_TASKS
from longcurate.eval.longbench_prompts import build_prompt, fit_prompt_ids
from longcurate.eval.model import EvalModel, GenRequest
from longcurate.eval.predict import predict

log = logging.getLogger("longcurate.eval.longbench")

CHUNK_SIZE = 16  # requests per generate() call: predictions are saved (and resumable) after each chunk


def prediction_line(item: LongBenchItem, pred: str) -> dict[str, Any]:
    """LongBench's prediction format plus `_id` (the shared loop adds `request_hash`)."""
    return {"pred": pred, "answers": item.answers, "all_classes": item.all_classes, "length": item.length,
            "_id": item.id}


class PromptFitter:
    """Renders a task's requests for the generator: the task's template (raw text for continuation
    tasks, else the backend's own) and, when the backend has a tokenizer, the prompt truncated in the
    middle to fit its context, with the ids measured on the way."""

    def __init__(self, generator: EvalModel, max_input_tokens: int | None):
        self.generator = generator
        self.max_input_tokens = max_input_tokens
        self.truncated = 0
        self._warned = False

    def template(self, task: str) -> str:
        if task in RAW_PROMPT_TASKS:
            return "raw"
        return self.generator.template

    def __call__(self, request: GenRequest, task: str) -> GenRequest:
        template = self.template(task)
        tokenizer = self.generator.tokenizer
        if tokenizer is None:
            if not self._warned:
                log.warning("the generation backend has no tokenizer: prompts are sent without middle truncation")
                self._warned = True
            return GenRequest(request.id, request.prompt, request.max_new_tokens, template=template)
        text, cut, ids = fit_prompt_ids(str(request.prompt), tokenizer, max_input_tokens=self.max_input_tokens,
                                        max_context=int(self.generator.max_context),
                                        max_new_tokens=request.max_new_tokens, template=template)
        self.truncated += int(cut)
        return GenRequest(request.id, text, request.max_new_tokens, template=template, ids=ids)


def predict_longbench(data: dict[str, list[LongBenchItem]], files: LongBenchFiles, generator: EvalModel, *,
                      prompts: dict[str, str], maxlens: dict[str, int], settings: dict[str, Any],
                      max_input_tokens: int | None = None, chunk_size: int = CHUNK_SIZE,
                      progress: bool = True) -> tuple[dict[tuple[str, str], str], dict[str, int]]:
    """Predict what is missing (or stale) of every task into its prediction file (`files`).

    `settings` (model, backend, template, ...) go into every request's hash, with the task's template.
    Returns ({(task, _id): reason} for the items that failed — not written, so a re-run retries them —
    and counts: predicted, skipped, truncated, errors).
    """
    fitter = PromptFitter(generator, max_input_tokens)
    errors: dict[tuple[str, str], str] = {}
    stats = {"predicted": 0, "skipped": 0, "truncated": 0, "errors": 0}
    for task, items in data.items():
        task_settings = {**settings, "template": "raw"} if task in RAW_PROMPT_TASKS else settings
        done = predict(
            generator, items, files.predictions(task),
            request=lambda it, t=task: GenRequest(it.id, build_prompt(prompts[t], it), maxlens[t]),
            record=lambda it, pred: {**prediction_line(it, pred), "model": settings["model"]},
            settings=task_settings, key="_id",
            prepare=lambda r, t=task: fitter(r, t), chunk=chunk_size,
            desc=f"longbench {task}" if progress else None)
        stats["predicted"] += done.predicted
        stats["skipped"] += done.skipped
        for f in done.failures:
            errors[(task, f.id)] = f.error if f.stage == "prompt" else f"generation error: {f.error}"
    stats["truncated"] = fitter.truncated
    stats["errors"] = len(errors)
    return errors, stats


__all__ = ["CHUNK_SIZE", "prediction_line", "PromptFitter", "predict_longbench"]
