"""Any OpenAI-compatible endpoint (OpenAI, a vLLM server, a llama.cpp server) through the `openai` SDK.

- `generate`: the chat completions API, greedy (temperature 0), under the one policy for paid
  endpoints (`core.endpoint`): a reply that is not an answer (a 200 whose body is not JSON, no
  `choices`, empty or null content) is a failed attempt like a 5xx or a timeout, tried again with
  backoff, counted by the circuit breaker (`eval.generate.openai.max_consecutive_failures` in a row
  stop the endpoint for this run), and never used as a prediction: an item left without an answer is
  a result with `error` set ("pending: ..." when no usable reply came), so the prediction loop writes
  nothing for it, the task ends incomplete (exit 75) and the rerun asks for just those items. The
  predictions file is the cache: only answers are written to it.
- `loglikelihood`: the completions API with `echo` and `logprobs`, as lm-evaluation-harness asks a
  server: the prompt rendered as text (the client has no tokenizer: `chat` renders FILM's `[INST]`
  template, `raw` the text as is), then the answer; the server returns every prompt token's log-prob
  with its character offset, and the answer's tokens are those that hold any of the answer's
  characters. A server that offers no such log-probs (the completions API missing, `echo` refused, no
  `logprobs` in the reply) stops the command with a UserError saying that this backend has no
  log-likelihood; a request that fails for any other reason fails its own item only.

The key is read from the environment variable named in `eval.generate.openai.api_key_env` (a local
server needs none; `api_key_env: ''` says the server takes none) and is never logged or written. Log-likelihood requests run in a bounded thread pool;
the SDK retries 429 / 5xx / timeouts with backoff (`max_retries`); an item that still fails becomes a
result with `error` set.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from longcurate.core.endpoint import Endpoint, Reply, run_coroutine
from longcurate.core.errors import UserError
from longcurate.core.jsonl import dumps
from longcurate.eval.model import GenRequest, GenResult, LLRequest, LLResult, failed_ll
from longcurate.eval.render import as_messages, render_prompt

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig

log = logging.getLogger("longcurate.eval")

R = TypeVar("R")


class NoLogLikelihood(UserError):
    """The server gives no prompt log-probs, so this backend cannot score answers."""


class OpenAIModel:
    tokenizer = None

    def __init__(self, endpoint: Endpoint, client: Any, model: str, *, template: str = "chat",
                 max_concurrency: int = 8, max_context: int | None = None, progress: bool = True):
        self.endpoint = endpoint  # generation: the paid-endpoint policy (async, its own client)
        self.client = client  # log-likelihood: the completions API (sync)
        self.model = model
        self.template = template
        self.max_concurrency = max(1, max_concurrency)
        # The interface's attribute; without a tokenizer nothing is fitted to it (the server checks).
        self.max_context = max_context or 128000
        self.progress = progress

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        """Answers in request order; an item whose requests brought no answer has `error` set."""
        if not requests:
            return []
        replies = run_coroutine(lambda: self._ask_all(requests))
        return [GenResult(r.id, reply.value) if reply.ok else GenResult(r.id, "", f"{reply.failure}: {reply.error}")
                for r, reply in zip(requests, replies)]

    async def _ask_all(self, requests: list[GenRequest]) -> list[Reply]:
        from tqdm.auto import tqdm

        with tqdm(total=len(requests), desc="generate", unit="request", disable=not self.progress) as bar:
            async def one(r: GenRequest) -> Reply:
                payload = {"model": self.model, "messages": as_messages(r.prompt), "max_tokens": r.max_new_tokens,
                           "temperature": 0.0}
                key = hashlib.sha256(dumps(payload).encode("utf-8")).hexdigest()
                reply = await self.endpoint.ask(payload, answer_text, key, label=r.id)
                bar.update(1)
                return reply

            async with self.endpoint.connected():
                return list(await asyncio.gather(*(one(r) for r in requests)))

    def loglikelihood(self, requests: list[LLRequest]) -> list[LLResult]:
        return self._map(self._ll_one, requests, "loglikelihood")

    def _map(self, fn: Callable[[Any], R], requests: list[Any], desc: str) -> list[R]:
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(self.max_concurrency) as pool:
            return list(tqdm(pool.map(fn, requests), total=len(requests), desc=desc, unit="request",
                             disable=not self.progress or not requests))

    def _ll_one(self, r: LLRequest) -> LLResult:
        import openai

        prompt, _ = render_prompt(r.prompt, None, self.template)
        if not r.answer:
            return failed_ll(r, "empty answer: no answer tokens")
        try:
            resp = self.client.completions.create(model=self.model, prompt=prompt + r.answer, max_tokens=1,
                                                  temperature=0.0, echo=True, logprobs=0)
        except (openai.NotFoundError, openai.BadRequestError, openai.UnprocessableEntityError) as e:
            raise NoLogLikelihood(f"the openai backend has no log-likelihood at {self.client.base_url}: its "
                                  f"completions API with echo and logprobs answered {type(e).__name__}: "
                                  f"{str(e)[:200]} (use eval.generate.backend=hf or vllm for the answer NLL)") from None
        except Exception as e:
            return failed_ll(r, f"request failed: {type(e).__name__}: {str(e)[:300]}")
        return answer_nll(r, resp, len(prompt), len(prompt) + len(r.answer))


def answer_text(content: str, finish_reason: str | None) -> str:
    """A generation's answer: the reply's text, stripped (`core.endpoint.reply_text` has already
    refused a reply whose content is null, empty or blank)."""
    return content.strip()


def answer_nll(request: LLRequest, resp: Any, start: int, end: int) -> LLResult:
    """The answer's mean NLL from an echoed completion: the tokens that hold any character of
    [start, end) (a token across the boundary counts with the answer; generated ones are left out)."""
    choices = getattr(resp, "choices", None) or []
    lp = getattr(choices[0], "logprobs", None) if choices else None
    if lp is None or not getattr(lp, "token_logprobs", None) or not getattr(lp, "text_offset", None):
        raise NoLogLikelihood("the openai backend has no log-likelihood: the server's completions reply holds no "
                              "prompt log-probs (echo + logprobs); use eval.generate.backend=hf or vllm for the answer NLL")
    values = []
    for offset, token, logprob in zip(lp.text_offset, lp.tokens, lp.token_logprobs):
        if offset < end and offset + len(token) > start:
            if logprob is None:
                return failed_ll(request, "the server gave no log-prob for an answer token")
            values.append(-float(logprob))
    if not values:
        return failed_ll(request, "empty answer: no answer tokens")
    return LLResult(request.id, sum(values) / len(values), len(values))


def from_config(run_cfg: EvalRunConfig, model_name: str, progress: bool | None = None) -> OpenAIModel:
    from openai import OpenAI

    from longcurate.core.api_key import DUMMY_KEY, Redactor, api_key_from_env
    from longcurate.core.endpoint import Policy, RequestCap
    from longcurate.core.progress import bars_shown

    g = run_cfg.eval.generate
    o = g.openai
    # api_key_env '' says the server takes no key (a local or private server)
    key = api_key_from_env(o.api_key_env, o.base_url, "eval.generate.openai", "the openai backend") \
        if o.api_key_env else DUMMY_KEY
    policy = Policy(max_retries=o.max_retries, timeout_s=o.timeout_s, backoff_initial_s=o.backoff_initial_s,
                    backoff_max_s=o.backoff_max_s, max_concurrency=o.max_concurrency,
                    max_consecutive_failures=o.max_consecutive_failures)
    served = o.model or model_name
    endpoint = Endpoint(o.base_url, key, policy, RequestCap(o.max_requests, "eval.generate.openai.max_requests"),
                        redact=Redactor(key), name=f"openai backend ({served})")
    client = OpenAI(base_url=o.base_url, api_key=key, max_retries=o.max_retries, timeout=o.timeout_s)
    return OpenAIModel(endpoint, client, served, template=g.template, max_concurrency=o.max_concurrency,
                       max_context=g.max_context, progress=bars_shown() if progress is None else progress)
