"""One model interface for every eval task, whatever serves the model (lm-evaluation-harness's habit):

- `generate(requests)`: greedy answers, a list of `GenRequest` in, `GenResult`s in the same order out;
- `loglikelihood(requests)`: the teacher-forced NLL of each `LLRequest`'s answer given its prompt (mean
  nats per answer token), a list in, `LLResult`s in the same order out.

A failure on one item is a result with `error` set; the other items go on. A backend that cannot give
log-likelihoods at all (an OpenAI-compatible server without the completions API's `echo` + `logprobs`)
raises a `UserError` saying so. Backends are chosen by name (`eval.generate.backend`) through a lazy
import map, so `hf` never imports the OpenAI SDK and `vllm` is imported only when asked for:

    hf       transformers: `generate` batched with left padding; `loglikelihood` by `core.engine`
    openai   any OpenAI-compatible endpoint: chat completions; completions with echo + logprobs
    vllm     vLLM offline (GPU): `generate`; `loglikelihood` from its prompt logprobs

`LazyModel` builds the backend on first use, so a model whose results are complete is never loaded, and
one model serves every task of its label (`ModelRun`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from longcurate.core.eval_layout import EvalModelFiles
from longcurate.eval.backends import BACKENDS

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig

Prompt = str | list[dict[str, str]]


@dataclass
class GenRequest:
    id: str
    prompt: Prompt
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


@dataclass
class LLRequest:
    """An answer to score given its prompt: the prompt as generation would send it, then the answer's
    own tokens (no end-of-turn marker)."""

    id: str
    prompt: Prompt
    answer: str


@dataclass
class LLResult:
    id: str
    nll: float  # mean negative log-likelihood per answer token, in nats
    n_tokens: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def failed_ll(request: LLRequest, error: str) -> LLResult:
    return LLResult(request.id, float("nan"), 0, error)


@runtime_checkable
class EvalModel(Protocol):
    tokenizer: Any | None  # the HF tokenizer of a local backend, else None
    max_context: int
    template: str  # how prompts are rendered (`backends.TEMPLATES`)

    def generate(self, requests: list[GenRequest]) -> list[GenResult]: ...

    def loglikelihood(self, requests: list[LLRequest]) -> list[LLResult]: ...


def make_model(cfg: EvalRunConfig, model: str | None = None) -> EvalModel:
    """The backend named by `eval.generate.backend` for `model` (default: the run's model)."""
    module_name, factory = BACKENDS[cfg.eval.generate.backend].split(":")  # the config checked the name
    return getattr(importlib.import_module(module_name), factory)(cfg, model or cfg.model)


class LazyModel:
    """Builds the real model on first use, so a model whose results are complete is never loaded."""

    def __init__(self, factory: Callable[[], EvalModel]):
        self._factory = factory
        self._model: EvalModel | None = None

    def get(self) -> EvalModel:
        if self._model is None:
            self._model = self._factory()
        return self._model

    @property
    def tokenizer(self) -> Any | None:
        return self.get().tokenizer

    @property
    def max_context(self) -> int:
        return self.get().max_context

    @property
    def template(self) -> str:
        return self.get().template

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        return self.get().generate(requests) if requests else []

    def loglikelihood(self, requests: list[LLRequest]) -> list[LLResult]:
        return self.get().loglikelihood(requests) if requests else []


@dataclass
class ModelRun:
    """What a task's runner is given (`tasks.Task.run`): the run's config, the model (a name or path)
    and its label, its results folder, and the model interface (built on first use, shared by the
    label's tasks)."""

    cfg: EvalRunConfig
    label: str
    model: str
    files: EvalModelFiles
    backend: EvalModel

    def generation(self, max_new_tokens: int) -> dict[str, Any]:
        """The generation settings results record (and prediction hashes include)."""
        g = self.cfg.eval.generate
        return {"backend": g.backend, "template": g.template, "max_new_tokens": max_new_tokens, "decoding": "greedy"}


def task_stats(summary: dict[str, Any], *, failed: int = 0, pending: int = 0) -> dict[str, Any]:
    """A task's stats: its summary and, when items are left failed or pending, `complete: False` with
    the counts (`core.runner`: no completion marker, the command ends incomplete, a rerun retries them)."""
    if not failed and not pending:
        return summary
    return {**summary, "complete": False, "failed": failed, "pending": pending}


def check_order(requests: list[Any], results: list[Any], what: str) -> None:
    """A backend returns one result per request, in request order: anything else is a bug in it."""
    if [r.id for r in results] != [r.id for r in requests]:
        raise RuntimeError(f"the {what} backend returned results {[r.id for r in results][:5]}... for requests "
                           f"{[r.id for r in requests][:5]}...: wrong count or order")


__all__ = ["GenRequest", "GenResult", "LLRequest", "LLResult", "EvalModel", "make_model", "LazyModel",
           "ModelRun", "Prompt", "failed_ll", "task_stats", "check_order"]
