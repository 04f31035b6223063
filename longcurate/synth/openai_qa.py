"""QA generation through any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server).

How requests are sent, retried, stopped and counted is the project's one client policy for paid
endpoints (`core/endpoint.py`): here a reply is an answer when it is QA JSON (`grounding.parse_answer`);
an empty reply, one without choices or one that is not QA JSON is a failed attempt, retried with
backoff, counted by the circuit breaker and never cached. What a failure means for the sample
(`QAResult.failure`):
- no usable reply after `max_retries + 1` tries, or a cap / the breaker / a rejected key stopped the
  backend: PENDING (a later run retries the same request, so the samples equal an uninterrupted run's);
- the endpoint refused the item (a 4xx other than 408 / 409 / 429): REFUSED;
- the answer is QA JSON but not grounded in the segments: UNUSABLE (the pipeline draws another request).

The on-disk cache holds every answer (grounded or not: the same request gets the same answer, so it is
never paid twice) and nothing else; an entry that is not QA JSON (written by an older version) is
treated as absent. Tokens and cost come from `usage`; `max_requests` / `budget_usd` are hard caps
(`openai_meter.py`). The API key is read from the environment variable named by `api_key_env` and
redacted from every message this module logs or records; it is never part of a cache key or entry.

    backend = OpenAIBackend.from_config(run_cfg)
    results = backend.generate(requests)   # same order; failures have `error` set
    backend.stats()                        # requests, cache_hits, retries, failures, tokens, cost_usd
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from longcurate.core.api_key import Redactor, api_key_from_env
from longcurate.core.endpoint import PENDING as NO_REPLY
from longcurate.core.endpoint import REFUSED as ENDPOINT_REFUSED
from longcurate.core.endpoint import Endpoint, Policy, Reply, run_coroutine
from longcurate.core.errors import ConfigError
from longcurate.synth.cache import ResponseCache, request_key
from longcurate.synth.config import OpenAIConfig
from longcurate.synth.grounding import AnswerFormatError, UngroundedError, check_reply, parse_answer
from longcurate.synth.openai_meter import BUDGET_EXHAUSTED, MAX_REQUESTS_REACHED, Meter
from longcurate.synth.openai_prompts import PROMPT_VERSION, messages_for_request
from longcurate.synth.qa import PENDING, REFUSED, QARequest, QAResult

if TYPE_CHECKING:
    from longcurate.synth.config import SynthRun

log = logging.getLogger(__name__)

__all__ = ["OpenAIBackend", "BUDGET_EXHAUSTED", "MAX_REQUESTS_REACHED", "policy_of"]


def policy_of(cfg: OpenAIConfig) -> Policy:
    return Policy(max_retries=cfg.max_retries, timeout_s=cfg.timeout_s, backoff_initial_s=cfg.backoff_initial_s,
                  backoff_max_s=cfg.backoff_max_s, max_concurrency=cfg.max_concurrency,
                  max_consecutive_failures=cfg.max_consecutive_failures)


def is_qa_json(entry: dict[str, Any]) -> bool:
    """A cache entry that holds an answer (QA JSON); anything else counts as absent."""
    try:
        parse_answer(entry.get("content"), entry.get("finish_reason"))
    except AnswerFormatError:
        return False
    return True


class OpenAIBackend:
    """The `openai` QA backend (satisfies `qa.QABackend`)."""

    name = "openai"

    def __init__(self, cfg: OpenAIConfig, cache_dir: str | os.PathLike, seed: int = 0):
        if importlib.util.find_spec("openai") is None:
            raise ConfigError("the openai QA backend needs the openai package: pip install 'longcurate[openai]'")
        self.cfg = cfg
        self.seed = seed
        self.cache = ResponseCache(cache_dir)
        self.meter = Meter(cfg)
        key = api_key_from_env(cfg.api_key_env, cfg.base_url, "synth.openai", "the openai QA backend")
        self.endpoint = Endpoint(cfg.base_url, key, policy_of(cfg), self.meter, redact=Redactor(key),
                                 name=f"openai QA ({cfg.model})")

    @classmethod
    def from_config(cls, run_cfg: SynthRun) -> "OpenAIBackend":
        return cls(run_cfg.synth.openai, run_cfg.layout().openai_cache, seed=run_cfg.seed)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    # -- public API -------------------------------------------------------------------------------
    def generate(self, requests: list[QARequest]) -> list[QAResult]:
        """Results in request order; runs its own event loop so callers stay synchronous."""
        if not requests:
            return []
        return run_coroutine(lambda: self.agenerate(requests))

    @property
    def exhausted(self) -> bool:
        """True once a hard stop (max_requests, budget_usd, a rejected key, the circuit breaker) was hit:
        callers stop asking."""
        return self.endpoint.stopped is not None

    @property
    def stop_reason(self) -> str | None:
        return self.endpoint.stopped

    def stats(self) -> dict[str, Any]:
        ep = self.endpoint
        return {**self.meter.stats(), "retries": ep.retries, "non_answers": ep.non_answers, "stopped": ep.stopped,
                "model": self.cfg.model, "prompt_version": PROMPT_VERSION}

    async def agenerate(self, requests: list[QARequest]) -> list[QAResult]:
        """The async core: identical requests (same cache key) are sent once and share the answer."""
        import asyncio

        from tqdm.auto import tqdm

        order, unique = self._plan(requests)
        pbar = tqdm(total=len(unique), desc=f"openai QA ({self.cfg.model})", unit="req", disable=None)
        try:
            async with self.endpoint.connected():
                tasks = {key: asyncio.ensure_future(self._run_one(req, key, payload, pbar))
                         for key, (req, payload) in unique.items()}
                await asyncio.gather(*tasks.values())
        finally:
            pbar.close()
        answers = {key: task.result() for key, task in tasks.items()}
        results = [self._answer_for(req, key, err, answers) for req, key, err in order]
        st = self.stats()
        log.info("openai QA: %d/%d ok; so far: %d requests sent (%d retries, %d non-answers), %d cache hits, "
                 "%d failures, %d+%d tokens, $%.4f", sum(r.ok for r in results), len(results), st["requests"],
                 st["retries"], st["non_answers"], st["cache_hits"], st["failures"], st["prompt_tokens"],
                 st["completion_tokens"], st["cost_usd"])
        return results

    # -- a batch ----------------------------------------------------------------------------------
    def _plan(self, requests: list[QARequest]) -> tuple[list[tuple[QARequest, str | None, str | None]],
                                                        dict[str, tuple[QARequest, dict[str, Any]]]]:
        """Each request's (request, cache key, invalid reason), and the distinct payloads by key."""
        order: list[tuple[QARequest, str | None, str | None]] = []
        unique: dict[str, tuple[QARequest, dict[str, Any]]] = {}
        for req in requests:
            try:
                payload = self.payload(req)
            except ValueError as e:
                order.append((req, None, f"invalid request: {e}"))
                continue
            key = request_key({**payload, "prompt_version": PROMPT_VERSION})
            unique.setdefault(key, (req, payload))
            order.append((req, key, None))
        return order, unique

    def _answer_for(self, req: QARequest, key: str | None, invalid: str | None,
                    answers: dict[str, QAResult]) -> QAResult:
        """A request's result: its own failure, or the answer of its key under its own id."""
        if key is None:
            self.meter.counts.failures += 1
            return QAResult(request_id=req.request_id, generator=self._generator(req), error=invalid)
        res = answers[key]
        if res.request_id != req.request_id:  # a duplicate of an earlier request: same answer, own id
            res = replace(res, request_id=req.request_id, key_fragments=list(res.key_fragments),
                          evidence=[replace(e) for e in res.evidence], usage=dict(res.usage))
        return res

    # -- one request ------------------------------------------------------------------------------
    def _generator(self, req: QARequest) -> str:
        return f"openai:{self.cfg.model}:{req.kind}"

    def payload(self, req: QARequest) -> dict[str, Any]:
        """The chat request for a QA request (its hash, with the prompt version, is the cache key)."""
        payload: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": messages_for_request(req.kind, req.segments),
            "temperature": self.cfg.temperature,
            self.cfg.max_tokens_param: self.cfg.max_output_tokens,
            "seed": self.seed,
        }
        if self.cfg.json_mode:
            payload["response_format"] = {"type": "json_object"}
        return payload

    async def _run_one(self, req: QARequest, key: str, payload: dict[str, Any], pbar: Any) -> QAResult:
        try:
            return await self._answer(req, key, payload)
        except Exception as e:  # a bug or an unexpected library error fails this item only
            self.meter.counts.failures += 1
            msg = self.endpoint.redact(f"unexpected error: {type(e).__name__}: {e}")
            log.warning("%s: %s", req.request_id, msg)
            return QAResult(request_id=req.request_id, generator=self._generator(req), error=msg, failure=PENDING)
        finally:
            pbar.update(1)

    async def _answer(self, req: QARequest, key: str, payload: dict[str, Any]) -> QAResult:
        """The cached answer, or the endpoint's; an answer is cached as soon as it arrives, then checked."""
        cached = self.cache.get(key)
        if cached is not None and is_qa_json(cached):
            self.meter.counts.cache_hits += 1
            return self._result(req, cached["content"], cached.get("finish_reason"), cached.get("usage") or {})
        reply: Reply = await self.endpoint.ask(payload, parse_answer, key, label=req.request_id)
        if not reply.ok:
            self.meter.counts.failures += 1
            if reply.failure == NO_REPLY:
                self.meter.skipped(reply.error)
            failure = REFUSED if reply.failure == ENDPOINT_REFUSED else PENDING
            return QAResult(request_id=req.request_id, generator=self._generator(req), error=reply.error,
                            usage=dict(reply.usage), failure=failure)
        self.cache.put(key, {"model": self.cfg.model, "prompt_version": PROMPT_VERSION, "request": payload,
                             "content": reply.content, "finish_reason": reply.finish_reason, "usage": reply.usage})
        return self._result(req, reply.content or "", reply.finish_reason, reply.usage)

    def _result(self, req: QARequest, content: str, finish: str | None, usage: dict[str, float]) -> QAResult:
        """Ground an answer (fresh or cached: the same content always gives the same result)."""
        try:
            parsed, evidence, fragments = check_reply(req.kind, content, finish, req.segments)
        except UngroundedError as e:
            self.meter.counts.failures += 1
            self.meter.counts.ungrounded += 1
            return QAResult(request_id=req.request_id, generator=self._generator(req), error=f"ungrounded: {e}",
                            usage=dict(usage))
        return QAResult(request_id=req.request_id, question=parsed["question"], answer=parsed["answer"],
                        key_fragments=fragments, evidence=evidence, generator=self._generator(req),
                        usage=dict(usage))
