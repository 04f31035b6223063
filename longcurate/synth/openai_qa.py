"""QA generation through any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server): the
transport. What an answer must satisfy is `grounding.py`; this module gets answers there and back.

Why the machinery: paid APIs fail transiently and cost money, so the backend
- retries 429 / 5xx / timeouts / connection errors / malformed or truncated JSON with its own
  exponential backoff (the SDK's retries are off); the jitter is a hash of the request id, so a run is
  reproducible; an item that keeps failing gets `error` set and the others are unaffected;
- says what a failure means (`QAResult.failure`): an endpoint that stays unreachable, slow, rate
  limited or failing (5xx) leaves the item PENDING for a later run; a 4xx other than 429 is this
  item's REFUSED; an answer that does not hold up is UNUSABLE (the pipeline draws another request);
- stops sending after `max_consecutive_failures` requests in a row failed at the endpoint (a circuit
  breaker: an outage costs a few requests, not `max_requests`; a 429 is back-pressure and counts only
  when an item gives up on it);
- keeps at most `max_concurrency` requests in flight (asyncio.Semaphore);
- caches every answer on disk under a hash of the request, so a re-run never pays twice;
- counts tokens and cost from `usage` and stops sending at `max_requests` / `budget_usd`
  (spent + the worst-case cost of the requests in flight; `openai_meter.py`);
- validates answers with `grounding.check_reply` (an ungrounded answer is cached, not retried).

The API key is read from the environment variable named by `api_key_env` and redacted from every
message this module logs or records; it is never part of a cache key or entry.

    backend = OpenAIBackend.from_config(run_cfg)
    results = backend.generate(requests)   # same order; failures have `error` set
    backend.stats()                        # requests, cache_hits, retries, failures, tokens, cost_usd
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from longcurate.core.errors import ConfigError
from longcurate.synth.cache import ResponseCache, request_key
from longcurate.synth.config import OpenAIConfig
from longcurate.synth.grounding import AnswerFormatError, UngroundedError, check_reply, parse_answer
from longcurate.synth.openai_auth import Redactor, resolve_api_key
from longcurate.synth.openai_meter import BUDGET_EXHAUSTED, MAX_REQUESTS_REACHED, Meter
from longcurate.synth.openai_prompts import PROMPT_VERSION, messages_for_request
from longcurate.synth.qa import PENDING, REFUSED, UNUSABLE, QARequest, QAResult

if TYPE_CHECKING:
    from longcurate.config import RunConfig

log = logging.getLogger(__name__)

__all__ = ["OpenAIBackend", "BUDGET_EXHAUSTED", "MAX_REQUESTS_REACHED"]


@dataclass
class _Retry:
    """An attempt that failed in a way worth another try, and how long the server asked us to wait."""

    error: str
    retry_after: float | None = None
    answered: bool = False  # the endpoint answered (200) but the answer was unusable
    throttled: bool = False  # a 429: back-pressure, counted by the circuit breaker only if it outlasts the retries


@dataclass
class _Reply:
    """A usable HTTP reply: the answer text (it parses as QA JSON) and its metered usage."""

    content: str | None
    finish_reason: str | None
    usage: dict[str, float]
    problem: str | None = None  # why the text is not QA JSON (asked again while tries remain)


class OpenAIBackend:
    """The `openai` QA backend (satisfies `qa.QABackend`)."""

    name = "openai"

    def __init__(self, cfg: OpenAIConfig, cache_dir: str | os.PathLike, seed: int = 0):
        if cfg.max_concurrency < 1:
            raise ConfigError("synth.openai.max_concurrency must be >= 1")
        if cfg.max_retries < 0:
            raise ConfigError("synth.openai.max_retries must be >= 0")
        if importlib.util.find_spec("openai") is None:
            raise ConfigError("the openai QA backend needs the openai package: pip install 'longcurate[openai]'")
        self.cfg = cfg
        self.seed = seed
        self.cache = ResponseCache(cache_dir)
        self._api_key = resolve_api_key(cfg)
        self._redact = Redactor(self._api_key)
        self.meter = Meter(cfg)

    @classmethod
    def from_config(cls, run_cfg: RunConfig) -> "OpenAIBackend":
        return cls(run_cfg.synth.openai, run_cfg.layout().openai_cache, seed=run_cfg.seed)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    # -- public API -------------------------------------------------------------------------------
    def generate(self, requests: list[QARequest]) -> list[QAResult]:
        """Results in request order; runs its own event loop so callers stay synchronous."""
        if not requests:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.agenerate(requests))
        # Called from inside a running loop (e.g. a notebook): run ours in a worker thread.
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["out"] = asyncio.run(self.agenerate(requests))
            except BaseException as e:  # re-raised in the caller's thread
                box["err"] = e

        t = threading.Thread(target=work, name="openai-qa")
        t.start()
        t.join()
        if "err" in box:
            raise box["err"]
        return box["out"]

    @property
    def exhausted(self) -> bool:
        """True once a hard stop (max_requests, budget_usd, a rejected key, the circuit breaker) was hit:
        callers stop asking."""
        return self.meter.stopped is not None

    @property
    def stop_reason(self) -> str | None:
        return self.meter.stopped

    def stats(self) -> dict[str, Any]:
        return {**self.meter.stats(), "model": self.cfg.model, "prompt_version": PROMPT_VERSION}

    async def agenerate(self, requests: list[QARequest]) -> list[QAResult]:
        """The async core: identical requests (same cache key) are sent once and share the answer."""
        for name in ("httpx2", "httpx", "httpcore2", "httpcore"):  # one INFO line per request otherwise
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        order, unique = self._plan(requests)
        answers = await self._send_all(unique)
        results = [self._answer_for(req, key, err, answers) for req, key, err in order]
        st = self.meter.counts
        log.info("openai QA: %d/%d ok; so far: %d requests sent (%d retries), %d cache hits, %d failures, "
                 "%d+%d tokens, $%.4f", sum(r.ok for r in results), len(results), st.requests, st.retries,
                 st.cache_hits, st.failures, st.prompt_tokens, st.completion_tokens, st.cost_usd)
        return results

    # -- a batch ----------------------------------------------------------------------------------
    def _plan(self, requests: list[QARequest]) -> tuple[list[tuple[QARequest, str | None, str | None]],
                                                        dict[str, tuple[QARequest, dict[str, Any]]]]:
        """Each request's (request, cache key, invalid reason), and the distinct payloads by key."""
        order: list[tuple[QARequest, str | None, str | None]] = []
        unique: dict[str, tuple[QARequest, dict[str, Any]]] = {}
        for req in requests:
            try:
                payload = self._payload(req)
            except ValueError as e:
                order.append((req, None, f"invalid request: {e}"))
                continue
            key = request_key({**payload, "prompt_version": PROMPT_VERSION})
            unique.setdefault(key, (req, payload))
            order.append((req, key, None))
        return order, unique

    async def _send_all(self, unique: dict[str, tuple[QARequest, dict[str, Any]]]) -> dict[str, QAResult]:
        """Every distinct request, at most `max_concurrency` in flight; its result by cache key."""
        import openai
        from tqdm.auto import tqdm

        sem = asyncio.Semaphore(self.cfg.max_concurrency)
        client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.cfg.base_url, max_retries=0,
                                    timeout=self.cfg.timeout_s)
        pbar = tqdm(total=len(unique), desc=f"openai QA ({self.cfg.model})", unit="req", disable=None)
        try:
            tasks = {key: asyncio.ensure_future(self._run_one(client, sem, req, key, payload, pbar))
                     for key, (req, payload) in unique.items()}
            await asyncio.gather(*tasks.values())
        finally:
            pbar.close()
            await client.close()
        return {key: task.result() for key, task in tasks.items()}

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

    def _failed(self, req: QARequest, error: str, usage: dict[str, float] | None = None,
                failure: str = UNUSABLE) -> QAResult:
        return QAResult(request_id=req.request_id, generator=self._generator(req), error=error,
                        usage=dict(usage or {}), failure=failure)

    def _payload(self, req: QARequest) -> dict[str, Any]:
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

    def _estimate_usd(self, payload: dict[str, Any]) -> tuple[float, float]:
        """Worst-case (input, total) cost of one request (see `Meter.estimate_usd`)."""
        return self.meter.estimate_usd(payload)

    def _backoff_s(self, request_id: str, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter in [0.5, 1) of the step, the jitter a hash of
        (request id, attempt) so a re-run waits the same; a server's Retry-After is honoured,
        both capped at backoff_max_s."""
        step = self.cfg.backoff_initial_s * (2 ** (attempt - 1))
        h = hashlib.sha256(f"{request_id}:{attempt}".encode()).digest()
        jitter = 0.5 + 0.5 * int.from_bytes(h[:8], "big") / 2 ** 64
        delay = min(self.cfg.backoff_max_s, step) * jitter
        if retry_after is not None:
            delay = max(delay, retry_after)
        return max(0.0, min(self.cfg.backoff_max_s, delay))

    async def _run_one(self, client: Any, sem: asyncio.Semaphore, req: QARequest, key: str,
                       payload: dict[str, Any], pbar: Any) -> QAResult:
        try:
            return await self._attempts(client, sem, req, key, payload)
        except Exception as e:  # a bug or an unexpected library error fails this item only
            self.meter.counts.failures += 1
            msg = self._redact(f"unexpected error: {type(e).__name__}: {e}")
            log.warning("%s: %s", req.request_id, msg)
            return self._failed(req, msg, failure=PENDING)
        finally:
            pbar.update(1)

    async def _attempts(self, client: Any, sem: asyncio.Semaphore, req: QARequest, key: str,
                        payload: dict[str, Any]) -> QAResult:
        """The cached answer, or up to `max_retries + 1` tries; a usable reply is cached, then checked."""
        cached = self.cache.get(key)
        if cached is not None:
            self.meter.counts.cache_hits += 1
            return self._result(req, cached["content"], cached.get("finish_reason"), cached.get("usage") or {})
        costs = self._estimate_usd(payload)
        tries = self.cfg.max_retries + 1
        retry = _Retry("")
        for attempt in range(tries):
            if attempt:
                await self._pause(req, attempt, retry)
            sent = await self._send(client, sem, req, payload, costs)
            if isinstance(sent, QAResult):  # stopped by a cap, or refused
                return sent
            if not isinstance(sent, _Retry):
                self.meter.endpoint_ok()  # the endpoint answered
            elif not sent.throttled:
                self.meter.endpoint_failed(sent.error)
            reply = sent if isinstance(sent, _Retry) else self._reply(sent, costs[1])
            if isinstance(reply, _Retry):
                retry = reply
                continue
            if reply.problem is not None and attempt + 1 < tries:  # an unusable answer: ask again
                retry = _Retry(reply.problem, answered=True)
                continue
            # the answer is kept, also the last unusable one, so a re-run gets the same outcome unpaid
            self.cache.put(key, {"model": self.cfg.model, "prompt_version": PROMPT_VERSION, "request": payload,
                                 "content": reply.content, "finish_reason": reply.finish_reason,
                                 "usage": reply.usage})
            return self._result(req, reply.content, reply.finish_reason, reply.usage)
        self.meter.counts.failures += 1
        msg = f"gave up after {tries} tries: {retry.error}"
        log.warning("%s: %s", req.request_id, msg)
        if not retry.answered:  # the endpoint failed, not the model's answer
            if retry.throttled:
                self.meter.endpoint_failed(msg)
            return self._failed(req, msg, failure=PENDING)
        return self._failed(req, msg)

    async def _pause(self, req: QARequest, attempt: int, retry: _Retry) -> None:
        self.meter.counts.retries += 1
        delay = self._backoff_s(req.request_id, attempt, retry.retry_after)
        log.debug("%s: retry %d/%d in %.2fs after %s", req.request_id, attempt, self.cfg.max_retries,
                  delay, retry.error)
        await asyncio.sleep(delay)

    async def _send(self, client: Any, sem: asyncio.Semaphore, req: QARequest, payload: dict[str, Any],
                    costs: tuple[float, float]) -> Any:
        """One HTTP request under the semaphore and the caps: the response, a `_Retry`, or a final
        failed `QAResult` (a cap was hit, or the server refused for good)."""
        import openai

        input_usd, estimate_usd = costs
        async with sem:
            stop = self.meter.admit(estimate_usd)
            if stop is not None:
                return self._failed(req, stop, failure=PENDING)
            try:
                return await client.chat.completions.create(**payload)
            except openai.APITimeoutError:
                self.meter.counts.unmetered_cost_usd += input_usd
                return _Retry(f"timeout after {self.cfg.timeout_s:g}s")
            except openai.APIConnectionError as e:
                cause = e.__cause__ or e.__context__
                return _Retry(self._redact(f"connection error ({type(cause).__name__ if cause else 'unknown'})"))
            except openai.APIStatusError as e:
                return self._status_error(req, e)
            except ValueError as e:  # a 200 whose body is not JSON (the SDK's json.loads failed)
                return _Retry(self._redact(f"malformed response body: {type(e).__name__}"))
            finally:
                self.meter.release(estimate_usd)

    def _status_error(self, req: QARequest, e: Any) -> _Retry | QAResult:
        """429 / 408 / 409 / 5xx are retried (honouring Retry-After); 401 / 403 / 404 (wrong key,
        model or URL: every item would fail) stop the backend and leave the item pending; any other
        status is this item's refusal, recorded with the server's reason."""
        error = self._redact(f"HTTP {e.status_code}: {_status_message(e)}")
        if e.status_code == 429 or e.status_code >= 500 or e.status_code in (408, 409):
            return _Retry(error, _retry_after_s(e), throttled=e.status_code == 429)
        self.meter.counts.failures += 1
        if e.status_code in (401, 403, 404):
            self.meter.stop(f"stopped: {error}")
            log.error("%s: %s; no further requests are sent", req.request_id, error)
            return self._failed(req, error, failure=PENDING)
        self.meter.endpoint_failed(error)
        return self._failed(req, error, failure=REFUSED)

    def _reply(self, response: Any, estimate_usd: float) -> _Reply | _Retry:
        """Meter a response's usage and take its answer text (with the reason when it is not QA JSON);
        a reply without one is worth another try."""
        usage = getattr(response, "usage", None)
        if usage is None:
            self.meter.counts.unmetered_cost_usd += estimate_usd
            usage_d: dict[str, float] = {}
        else:
            pt, ct, cost = self.meter.account(usage)
            usage_d = {"prompt_tokens": pt, "completion_tokens": ct, "cost_usd": round(cost, 10)}
        try:
            choice = response.choices[0]
            content, finish = choice.message.content, choice.finish_reason
        except (AttributeError, IndexError, TypeError):
            return _Retry("malformed response: no choices", answered=True)
        try:
            parse_answer(content, finish)
        except AnswerFormatError as e:
            return _Reply(content, finish, usage_d, f"invalid answer: {e}")
        return _Reply(content, finish, usage_d)

    def _result(self, req: QARequest, content: str, finish: str | None, usage: dict[str, float]) -> QAResult:
        """Validate a reply (fresh or cached: the same content always gives the same result)."""
        try:
            parsed, evidence, fragments = check_reply(req.kind, content, finish, req.segments)
        except AnswerFormatError as e:
            self.meter.counts.failures += 1
            return self._failed(req, f"invalid answer: {e}", usage)
        except UngroundedError as e:
            self.meter.counts.failures += 1
            self.meter.counts.ungrounded += 1
            return self._failed(req, f"ungrounded: {e}", usage)
        return QAResult(request_id=req.request_id, question=parsed["question"], answer=parsed["answer"],
                        key_fragments=fragments, evidence=evidence, generator=self._generator(req),
                        usage=dict(usage))


def _status_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:200]
    return str(getattr(e, "message", "") or type(e).__name__)[:200]


def _retry_after_s(e: Any) -> float | None:
    """Seconds from `retry-after-ms` / `retry-after` (a number; HTTP dates are ignored)."""
    headers = getattr(getattr(e, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None
