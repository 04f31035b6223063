"""One client policy for every paid OpenAI-compatible chat endpoint: synth's QA backend and eval's judges.

A request is *answered* only by a reply its caller can use: the caller's `accept(content, finish_reason)`
returns the value (QA JSON, a rating on the scale) or raises `NonAnswer`. Everything else is decided
here, once, for every caller:

- An attempt that brings no usable answer has failed, whatever the reason: a timeout, a connection
  error, 429, 408, 409, 5xx, a 200 whose body is not JSON, a reply without `choices`, with empty or
  null content, or with content `accept` rejects. It is tried again after an exponential backoff (the
  jitter is a hash of the request and the attempt, so a rerun waits the same; Retry-After is
  honoured), at most `max_retries` more times; the SDK's own retries are off.
- A circuit breaker counts attempts in a row that failed, non-answers included (a 429 only when its
  request gives up on it); at `max_consecutive_failures` nothing more is sent in this process. A usable
  answer resets it, so an endpoint that answers 200 with nothing costs a few requests, not the budget.
- 401 / 403 / 404 (wrong key, model or URL: every request would fail) stop the endpoint at once; any
  other 4xx is this request's refusal (`REFUSED`), not retried.
- What a request came to is a `Reply`: a value, or why not: `PENDING` (no reply came: the endpoint
  failed, or a cap or the breaker stopped it), `NON_ANSWER` (replies came, none usable) or `REFUSED`.
  Callers cache values only, and treat a cached entry that `accept` rejects as absent (a cache written
  by an older version), so a rerun against a fixed endpoint pays for exactly what is missing.
- At most `max_concurrency` requests are in flight; the caller's `Ledger` admits each one under its
  caps (request count, budget) and counts what the replies say they cost.
- Every request carries an `Idempotency-Key` header made from the request's cache key and the
  attempt, so the same attempt sent again after an interruption is the same request to an endpoint or
  gateway that deduplicates on that header. OpenAI's chat endpoint does not: a request in flight at
  Ctrl-C is lost and the rerun pays for it again. Every answer is handed to the caller (who caches it)
  as soon as it arrives, so that loss is at most the `max_concurrency` requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol, TypeVar

log = logging.getLogger("longcurate.endpoint")

PENDING = "pending"  # no reply came (the endpoint failed, or a cap or the breaker stopped it)
NON_ANSWER = "non_answer"  # replies came, none of them usable
REFUSED = "refused"  # the endpoint refused this request (a 4xx other than 408, 409, 429)
CIRCUIT_OPEN = "circuit breaker"
_RETRIED_STATUS = (408, 409, 429)
_STOP_STATUS = (401, 403, 404)
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")

Accept = Callable[[str, "str | None"], Any]
T = TypeVar("T")


class NonAnswer(ValueError):
    """A reply that is not an answer: empty, no rating, a rating off the scale, no QA JSON."""


@dataclass(frozen=True)
class Policy:
    """The knobs of the policy (each caller's config section maps onto them)."""

    max_retries: int = 5
    timeout_s: float = 60.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    max_concurrency: int = 8
    max_consecutive_failures: int | None = 20


@dataclass
class Reply:
    """What one request came to: `value` (what `accept` returned) with the reply's text and usage, or
    `failure` and `error` (with the last reply's text, if one came). What the failed attempts cost is
    in the ledger, not here."""

    value: Any = None
    content: str | None = None
    finish_reason: str | None = None
    usage: dict[str, float] = field(default_factory=dict)
    tries: int = 0
    error: str | None = None
    failure: str | None = None  # None (answered), PENDING, NON_ANSWER or REFUSED

    @property
    def ok(self) -> bool:
        return self.failure is None


class Ledger(Protocol):
    """What a caller counts and caps: the requests it lets out and what their replies cost."""

    def admit(self, payload: dict[str, Any]) -> str | None:
        """Reserve one request, or say why none may be sent (a cap: the endpoint then stops)."""

    def release(self, payload: dict[str, Any]) -> None:
        """The admitted request returned (with a reply or not)."""

    def paid(self, usage: Any) -> dict[str, float]:
        """Count a reply's `usage` block; returns it as numbers for the record."""

    def unmetered(self, payload: dict[str, Any], replied: bool) -> None:
        """An attempt that may have cost money but reported no usage (a timeout, a reply without usage)."""


class RequestCap:
    """A `Ledger` for an endpoint that is not priced here: at most `max_requests` requests; the tokens
    of every reply counted."""

    def __init__(self, max_requests: int | None, setting: str):
        self.max_requests, self.setting, self.sent = max_requests, setting, 0
        self.tokens = dict.fromkeys(USAGE_KEYS, 0)

    def admit(self, payload: dict[str, Any]) -> str | None:
        if self.max_requests is not None and self.sent >= self.max_requests:
            return f"{self.setting} ({self.max_requests}) reached"
        self.sent += 1
        return None

    def release(self, payload: dict[str, Any]) -> None:
        return None

    def paid(self, usage: Any) -> dict[str, float]:
        counted = {k: int(getattr(usage, k, 0) or 0) for k in USAGE_KEYS}
        for k, v in counted.items():
            self.tokens[k] += v
        return counted

    def unmetered(self, payload: dict[str, Any], replied: bool) -> None:
        return None


@dataclass
class _Failed:
    """An attempt that brought no usable answer."""

    error: str
    retry_after: float | None = None
    throttled: bool = False  # a 429: back-pressure, counted by the breaker only when the request gives up
    replied: bool = False  # the endpoint replied, but not with an answer
    final: str | None = None  # PENDING or REFUSED: not worth another try


def backoff_s(policy: Policy, key: str, attempt: int, retry_after: float | None = None) -> float:
    """The wait before `attempt` (1 = the first retry): exponential, jitter in [0.5, 1) of the step from
    a hash of (key, attempt), a server's Retry-After honoured, all capped at `backoff_max_s`."""
    step = policy.backoff_initial_s * (2 ** (attempt - 1))
    h = hashlib.sha256(f"{key}:{attempt}".encode()).digest()
    jitter = 0.5 + 0.5 * int.from_bytes(h[:8], "big") / 2 ** 64
    delay = min(policy.backoff_max_s, step) * jitter
    if retry_after is not None:
        delay = max(delay, retry_after)
    return max(0.0, min(policy.backoff_max_s, delay))


def reply_text(response: Any) -> tuple[str, str | None]:
    """(content, finish_reason) of a chat completion; `NonAnswer` when it has none."""
    try:
        choice = response.choices[0]
        content, finish = choice.message.content, choice.finish_reason
    except (AttributeError, IndexError, TypeError, KeyError):
        raise NonAnswer("no choices in the reply") from None
    if content is None:
        raise NonAnswer("null content")
    if not isinstance(content, str) or not content.strip():
        raise NonAnswer("empty content")
    return content, finish


class Endpoint:
    """One endpoint for one run: the policy, the circuit breaker and the caller's ledger. `ask` inside
    `async with endpoint.connected():` (one event loop); the breaker and counts outlive connections."""

    def __init__(self, base_url: str, api_key: str, policy: Policy, ledger: Ledger,
                 redact: Callable[[str], str] = str, name: str = "endpoint"):
        self.base_url, self.policy, self.ledger, self.redact, self.name = base_url, policy, ledger, redact, name
        self._api_key = api_key
        self.stopped: str | None = None  # once set, nothing more is sent
        self.streak = 0  # attempts in a row that failed
        self.retries = 0
        self.non_answers = 0  # replies that were not answers
        self.interrupted = 0  # requests in flight when the run was interrupted (their answers are lost)
        self._client: Any = None
        self._sem: asyncio.Semaphore | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"Endpoint({self.name}, base_url={self.base_url!r})"

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator["Endpoint"]:
        import openai

        for name in ("httpx2", "httpx", "httpcore2", "httpcore"):  # one INFO line per request otherwise
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                                          timeout=self.policy.timeout_s)
        self._sem = asyncio.Semaphore(self.policy.max_concurrency)
        self.interrupted = 0
        try:
            yield self
        finally:
            if self.interrupted:
                log.warning("%s: interrupted with %d request(s) in flight; their answers are lost and a rerun "
                            "sends them again", self.name, self.interrupted)
            await self._client.close()
            self._client, self._sem = None, None

    def stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
            log.error("%s: %s; no further requests are sent", self.name, reason)

    async def ask(self, payload: dict[str, Any], accept: Accept, key: str, label: str = "") -> Reply:
        """What one request comes to after at most `max_retries + 1` attempts (see the module doc)."""
        out = Reply()
        failed = _Failed("not sent")
        tries = self.policy.max_retries + 1
        for attempt in range(tries):
            if attempt:
                self.retries += 1
                delay = backoff_s(self.policy, key, attempt, failed.retry_after)
                log.debug("%s%s: retry %d/%d in %.2fs after %s", self.name, label and f" {label}", attempt,
                          tries - 1, delay, failed.error)
                await asyncio.sleep(delay)
            result = await self._attempt(payload, accept, key, attempt, out)
            if result is None:
                return out
            failed = result
            if failed.final:
                break
        else:
            if failed.throttled:
                self._count_failure(failed)
            failed.error = f"gave up after {tries} tries: {failed.error}"
            failed.final = NON_ANSWER if failed.replied else PENDING
            log.warning("%s%s: %s", self.name, label and f" {label}", failed.error)
        out.error, out.failure = failed.error, failed.final
        return out

    async def _attempt(self, payload: dict[str, Any], accept: Accept, key: str, attempt: int,
                       out: Reply) -> _Failed | None:
        """One request under the semaphore and the ledger; None when it brought a usable answer."""
        assert self._sem is not None, "ask inside `async with endpoint.connected()`"
        async with self._sem:
            if self.stopped:
                return _Failed(self.stopped, final=PENDING)
            cap = self.ledger.admit(payload)
            if cap is not None:
                self.stop(cap)
                return _Failed(cap, final=PENDING)
            try:
                response = await self._client.chat.completions.create(
                    **payload, extra_headers={"Idempotency-Key": f"longcurate-{key[:40]}-{attempt}"})
            except asyncio.CancelledError:
                self.interrupted += 1
                raise
            except Exception as e:  # classified below; anything else is re-raised
                return self._request_failed(e, payload)
            finally:
                self.ledger.release(payload)
        out.tries = attempt + 1
        return self._take(response, payload, accept, out)

    def _take(self, response: Any, payload: dict[str, Any], accept: Accept, out: Reply) -> _Failed | None:
        """Meter a reply and keep its answer; a reply that is not one is a failed attempt."""
        usage = getattr(response, "usage", None)
        if usage is None:
            self.ledger.unmetered(payload, replied=True)
        out.usage = {} if usage is None else self.ledger.paid(usage)
        content = finish = None
        try:
            content, finish = reply_text(response)
            value = accept(content, finish)
        except NonAnswer as e:
            self.non_answers += 1
            out.content, out.finish_reason = content, finish
            return self._count_failure(_Failed(self.redact(f"not an answer: {e}"), replied=True))
        self.streak = 0
        out.value, out.content, out.finish_reason = value, content, finish
        return None

    def _request_failed(self, e: Exception, payload: dict[str, Any]) -> _Failed:
        import openai

        if isinstance(e, openai.APITimeoutError):
            self.ledger.unmetered(payload, replied=False)
            return self._count_failure(_Failed(f"timeout after {self.policy.timeout_s:g}s"))
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e.__context__
            return self._count_failure(_Failed(f"connection error ({type(cause).__name__ if cause else 'unknown'})"))
        if isinstance(e, openai.APIStatusError):
            return self._status_failed(e)
        if isinstance(e, ValueError):  # a 200 whose body is not JSON (the SDK's json.loads failed)
            return self._count_failure(_Failed(f"malformed response body: {type(e).__name__}"))
        raise e

    def _status_failed(self, e: Any) -> _Failed:
        """408 / 409 / 429 / 5xx are retried (honouring Retry-After); 401 / 403 / 404 stop the endpoint;
        any other status refuses this request, with the server's reason."""
        error = self.redact(f"HTTP {e.status_code}: {status_message(e)}")
        if e.status_code in _RETRIED_STATUS or e.status_code >= 500:
            failed = _Failed(error, retry_after_s(e), throttled=e.status_code == 429)
            return failed if failed.throttled else self._count_failure(failed)
        if e.status_code in _STOP_STATUS:
            self.stop(f"stopped: {error}")
            return _Failed(error, final=PENDING)
        return self._count_failure(_Failed(error, final=REFUSED))

    def _count_failure(self, failed: _Failed) -> _Failed:
        """One more failed attempt in a row; the breaker opens at `max_consecutive_failures`."""
        self.streak += 1
        limit = self.policy.max_consecutive_failures
        if limit is not None and self.streak >= limit:
            self.stop(f"{CIRCUIT_OPEN}: {self.streak} requests in a row failed at the endpoint "
                      f"(last: {failed.error})")
        return failed


def status_message(e: Any) -> str:
    """The server's reason for an HTTP error (its JSON `error.message`, else the SDK's text), short."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:200]
    return str(getattr(e, "message", "") or type(e).__name__)[:200]


def retry_after_s(e: Any) -> float | None:
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


def run_coroutine(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end from synchronous code, also when the caller is inside a running
    event loop (a notebook): then in a worker thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())  # type: ignore[arg-type]
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["out"] = asyncio.run(make())  # type: ignore[arg-type]
        except BaseException as e:  # re-raised in the caller's thread
            box["err"] = e

    t = threading.Thread(target=work, name="endpoint")
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]
    return box["out"]


__all__ = ["PENDING", "NON_ANSWER", "REFUSED", "CIRCUIT_OPEN", "USAGE_KEYS", "NonAnswer", "Policy", "Reply", "Ledger",
           "RequestCap", "Endpoint", "backoff_s", "reply_text", "status_message", "retry_after_s", "run_coroutine"]
