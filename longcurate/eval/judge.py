"""A rating judge behind any OpenAI-compatible chat endpoint (GPT-4 for LongBench-Chat and LongAlign's
needle test; vLLM or a llama.cpp server for a local judge).

Requests are `{model, messages, temperature: 0}` and go through the project's one client policy for
paid endpoints (`core/endpoint.py`): here a reply is an answer when the caller's rule finds a rating in
it and the rating lies on the scale (1-10). A reply without one (or `[[15]]`, `[[-3]]`), an empty reply,
a 5xx, a timeout: each is a failed attempt, tried again with backoff up to `max_retries` more times
(LongAlign's 5 tries), counted by the circuit breaker, and never cached. A case is then *rated*,
*pending* (no reply came: the endpoint failed, or a cap or the breaker stopped the judge) or *failed*
(the judge replied without a usable rating, or refused the request); neither of the last two is ever a
rating, and the caller reports them so the command ends incomplete and a rerun asks again.

- Usable replies are kept on disk (`<cache_dir>/judge.jsonl`, one line per reply, keyed by a hash of
  the request and the try that got it), so a rerun sends no request for a case already rated; a cached
  line without a usable rating (written by an older version) is ignored. The file is locked while a
  run writes it.
- The key is read from `$<api_key_env>` only when a request must be sent (a local server gets a
  dummy); it is never logged, written, or part of a cache key, and it is removed from any error text.
- At most `max_concurrency` requests are in flight; `max_requests` caps the requests of one run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from longcurate.core.api_key import Redactor, api_key_from_env
from longcurate.core.endpoint import PENDING, USAGE_KEYS, Endpoint, NonAnswer, Policy, RequestCap, run_coroutine
from longcurate.core.errors import UserError
from longcurate.core.jsonl import dumps
from longcurate.core.shared_cache import SharedCache

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig
    from longcurate.eval.config import JudgeConfig

log = logging.getLogger("longcurate.eval.judge")

CACHE_NAME = "judge.jsonl"
SCALE = (1.0, 10.0)  # LongBench-Chat's and LongAlign's needle ratings

Parse = Callable[[str], "float | None"]
Messages = list[dict[str, str]]
_NUMBER = r"[-+]?\d+(?:\.\d+)?"


def last_bracket_rating(reply: str) -> float | None:
    """LongBench-Chat's rule: the last `[[...]]` of the reply, and the first number inside it (with its
    sign, so that `[[-3]]` is -3, off the scale, not 3)."""
    found = re.findall(r"\[\[([^\]]+)\]\]", reply)
    numbers = re.findall(_NUMBER, found[-1]) if found else []
    return float(numbers[0]) if numbers else None


def first_integer_rating(reply: str) -> float | None:
    """LongAlign's needle rule: the first `[[<integer>]]` of the reply."""
    m = re.search(r"\[\[(\d+)\]\]", reply)
    return float(m.group(1)) if m else None


def rating_on_scale(parse: Parse, scale: tuple[float, float] = SCALE) -> Callable[[str, "str | None"], float]:
    """The judge's `accept`: the rating `parse` finds, which must lie on the scale; else `NonAnswer`."""
    low, high = scale

    def accept(content: str, finish_reason: str | None = None) -> float:
        value = parse(content)
        if value is None:
            raise NonAnswer("no rating in the reply")
        if not low <= value <= high:
            raise NonAnswer(f"rating {value:g} is off the scale {low:g}-{high:g}")
        return value

    return accept


@dataclass
class Rating:
    """A case's outcome: `value` (None: not rated), the reply it rests on (or the last reply, which was
    not an answer), the tries it took, the tokens of the rated reply, and `error` when it is not rated."""

    value: float | None = None
    reply: str | None = None
    tries: int = 0
    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))
    error: str | None = None
    pending: bool = False  # no reply came (a rerun asks again); else a case not rated has failed

    @property
    def status(self) -> str:
        return "rated" if self.value is not None else "pending" if self.pending else "failed"


class Judge:
    """`with Judge(cfg, cache_dir) as judge: judge.rate_all(messages_list, parse)`."""

    def __init__(self, cfg: JudgeConfig, cache_dir: str | os.PathLike):
        self.cfg = cfg
        self.cache_path = Path(cache_dir) / CACHE_NAME
        self.ledger = RequestCap(cfg.max_requests, "eval.judge.max_requests")
        self.endpoint: Endpoint | None = None  # made when the first request must be sent
        self.cache_hits = 0
        self.cache = SharedCache(self.cache_path)  # every model's eval asks it: locked while open

    def __repr__(self) -> str:  # never shows the key
        return f"Judge(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    def __enter__(self) -> "Judge":
        self.cache.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cache.__exit__(*exc)

    # -- rating ---------------------------------------------------------------------------------
    def rate_all(self, requests: list[Messages], parse: Parse, desc: str = "judge",
                 scale: tuple[float, float] = SCALE) -> list[Rating]:
        """Ratings in request order: from the cache, else from the judge (identical requests once)."""
        accept = rating_on_scale(parse, scale)
        payloads = [{"model": self.cfg.model, "messages": m, "temperature": 0.0} for m in requests]
        ratings: dict[str, Rating] = {}
        todo: dict[str, dict[str, Any]] = {}
        for payload in payloads:
            key = self.cache_key(payload, 0)
            cached = self._cached(payload, accept)
            if cached is not None:
                ratings[key] = cached
            elif key not in ratings:
                todo[key] = payload
        if todo:
            ratings.update(run_coroutine(lambda: self._ask_all(todo, accept, desc)))
        return [ratings[self.cache_key(p, 0)] for p in payloads]

    def cache_key(self, payload: dict[str, Any], attempt: int) -> str:
        """A hash of the request and the try that got its reply."""
        return hashlib.sha256(dumps({**payload, "try": attempt}).encode("utf-8")).hexdigest()

    def _cached(self, payload: dict[str, Any], accept: Callable[[str, str | None], float]) -> Rating | None:
        """The first kept reply to this request that holds a usable rating; other lines are ignored."""
        for attempt in range(self.cfg.max_retries + 1):
            entry = self.cache.get(self.cache_key(payload, attempt))
            if entry is None:
                continue
            try:
                value = accept(entry.get("content") or "", None)
            except NonAnswer:
                continue
            self.cache_hits += 1
            usage = {k: int((entry.get("usage") or {}).get(k, 0)) for k in USAGE_KEYS}
            return Rating(value, entry["content"], attempt + 1, usage)
        return None

    async def _ask_all(self, todo: dict[str, dict[str, Any]], accept: Callable[[str, str | None], float],
                       desc: str) -> dict[str, Rating]:
        from tqdm.auto import tqdm

        endpoint = self._endpoint()
        with tqdm(total=len(todo), desc=desc, unit="case") as bar:
            async def one(key: str, payload: dict[str, Any]) -> Rating:
                rating = await self._ask(endpoint, payload, accept, key)
                bar.update(1)
                return rating

            async with endpoint.connected():
                done = await asyncio.gather(*(one(k, p) for k, p in todo.items()))
        return dict(zip(todo, done))

    async def _ask(self, endpoint: Endpoint, payload: dict[str, Any], accept: Callable[[str, str | None], float],
                   key: str) -> Rating:
        """One case from the judge; a usable reply is written to the cache as soon as it arrives."""
        reply = await endpoint.ask(payload, accept, key)
        if not reply.ok:
            return Rating(None, reply.content, reply.tries, error=reply.error, pending=reply.failure == PENDING)
        usage = {k: int(reply.usage.get(k, 0)) for k in USAGE_KEYS}
        attempt = reply.tries - 1
        entry = {"key": self.cache_key(payload, attempt), "try": attempt, "model": payload["model"],
                 "content": reply.content, "usage": usage}
        self.cache.put(entry)
        return Rating(reply.value, reply.content, reply.tries, usage)

    def _endpoint(self) -> Endpoint:
        """The endpoint, made when the first request must be sent (a rerun served from the cache needs
        no key)."""
        if self.endpoint is None:
            import importlib.util

            if importlib.util.find_spec("openai") is None:
                raise UserError("the judge needs the openai package: pip install 'longcurate[openai]'")
            cfg = self.cfg
            key = api_key_from_env(cfg.api_key_env, cfg.base_url, "eval.judge", "the judge")
            policy = Policy(max_retries=cfg.max_retries, timeout_s=cfg.timeout_s,
                            backoff_initial_s=cfg.backoff_initial_s, backoff_max_s=cfg.backoff_max_s,
                            max_concurrency=cfg.max_concurrency, max_consecutive_failures=cfg.max_consecutive_failures)
            self.endpoint = Endpoint(cfg.base_url, key, policy, self.ledger, redact=Redactor(key),
                                     name=f"judge ({cfg.model})")
        return self.endpoint

    def stats(self) -> dict[str, Any]:
        ep = self.endpoint
        return {"model": self.cfg.model, "base_url": self.cfg.base_url, "requests_sent": self.ledger.sent,
                "tokens_sent_for": dict(self.ledger.tokens), "cache_hits": self.cache_hits, "retries": ep.retries if ep else 0,
                "non_answers": ep.non_answers if ep else 0, "stopped": ep.stopped if ep else None,
                "cache": str(self.cache_path)}


def judge_cache(cfg: EvalRunConfig) -> Path:
    """Where the judge keeps its replies: `eval.judge.cache_dir`, else `<eval dir>/judge-cache`."""
    return Path(cfg.eval.judge.cache_dir) if cfg.eval.judge.cache_dir else cfg.layout().evals.judge_cache


def usage_total(ratings: list[Rating]) -> dict[str, int]:
    """The tokens of every reply the ratings rest on (cached ones included: each was paid once)."""
    return {k: sum(r.usage[k] for r in ratings) for k in USAGE_KEYS}


__all__ = ["Judge", "Rating", "SCALE", "last_bracket_rating", "first_integer_rating", "rating_on_scale",
           "judge_cache", "usage_total", "CACHE_NAME"]
