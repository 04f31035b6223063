"""A rating judge behind any OpenAI-compatible chat endpoint (GPT-4 for LongBench-Chat and LongAlign's
needle test; vLLM or a llama.cpp server for a local judge), through the `openai` SDK.

- Requests are `{model, messages, temperature: 0}`; the SDK retries 429 / 5xx / timeouts with backoff
  (`max_retries`); a request that still fails leaves its case *pending* (rated by the next run).
- A reply is parsed by the caller's rule; a reply without a rating is asked again, up to `max_retries`
  more times (LongAlign's 5 tries), and then the case is *failed*: never a rating of 0.
- Every reply is kept on disk (`<cache_dir>/judge.jsonl`, one line per reply) under a hash of its request
  and its try number, so a rerun replays the same replies, tries included, and sends no request for
  a case already judged; the file is locked while a run writes it.
- The key is read from `$<api_key_env>` when the first request is sent (a local server gets a dummy);
  it is never logged, written, or part of a cache key, and it is removed from any error text kept.
- At most `max_concurrency` requests are in flight; `max_requests` caps the requests of one run.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from longcurate.core.errors import UserError
from longcurate.core.jsonl import ResumableWriter, dumps, read_valid_prefix
from longcurate.core.lock import output_lock

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig
    from longcurate.eval.config import JudgeConfig

log = logging.getLogger("longcurate.eval.judge")

CACHE_NAME = "judge.jsonl"
DUMMY_KEY = "EMPTY"  # what local servers accept when they check no key
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")

Parse = Callable[[str], "float | None"]
Messages = list[dict[str, str]]


def last_bracket_rating(reply: str) -> float | None:
    """LongBench-Chat's rule: the last `[[...]]` of the reply, and the first number inside it."""
    found = re.findall(r"\[\[([^\]]+)\]\]", reply)
    numbers = re.findall(r"\d+\.\d+|\d+", found[-1]) if found else []
    return float(numbers[0]) if numbers else None


def first_integer_rating(reply: str) -> float | None:
    """LongAlign's needle rule: the first `[[<integer>]]` of the reply."""
    m = re.search(r"\[\[(\d+)\]\]", reply)
    return float(m.group(1)) if m else None


def is_local(base_url: str) -> bool:
    from urllib.parse import urlparse

    host = (urlparse(base_url).hostname or "").lower()
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return host == "localhost"


@dataclass
class Rating:
    """A case's outcome: `value` (None: not rated), the last reply, the tries it took, the tokens its
    replies cost, and `error` when a request failed (the case is pending)."""

    value: float | None = None
    reply: str | None = None
    tries: int = 0
    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))
    error: str | None = None

    @property
    def status(self) -> str:
        return "rated" if self.value is not None else "pending" if self.error else "failed"


class Judge:
    """`with Judge(cfg, cache_dir) as judge: judge.rate_all(messages_list, parse)`."""

    def __init__(self, cfg: JudgeConfig, cache_dir: str | os.PathLike, client: Any = None):
        self.cfg = cfg
        self.cache_path = Path(cache_dir) / CACHE_NAME
        self._client = client
        self._key = ""
        self._lock = threading.Lock()
        self._make_lock = threading.Lock()
        self.sent = 0
        self.cache_hits = 0
        self._entries: dict[str, dict[str, Any]] = {}
        self._writer: ResumableWriter | None = None
        self._held: contextlib.ExitStack | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"Judge(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    def __enter__(self) -> "Judge":
        self._held = contextlib.ExitStack()
        self._held.enter_context(output_lock(self.cache_path))
        entries, _ = read_valid_prefix(self.cache_path)
        self._entries = {e["key"]: e for e in entries if isinstance(e, dict) and "key" in e}
        self._writer = self._held.enter_context(ResumableWriter(self.cache_path, key="key"))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._held is not None:
            self._held.close()

    # -- the endpoint ---------------------------------------------------------------------------
    def client(self) -> Any:
        """The SDK client, made on the first request (a rerun served from the cache needs no key)."""
        with self._make_lock:
            return self._make_client()

    def _make_client(self) -> Any:
        if self._client is None:
            import importlib.util

            if importlib.util.find_spec("openai") is None:
                raise UserError("the judge needs the openai package: pip install 'longcurate[openai]'")
            from openai import OpenAI

            for name in ("httpx", "httpcore"):  # one INFO line per request otherwise
                logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))
            env = self.cfg.api_key_env
            self._key = os.environ.get(env, "").strip() if env else ""
            if not self._key and not is_local(self.cfg.base_url):
                raise UserError(f"the judge needs an API key: set the environment variable {env} (eval.judge."
                                f"api_key_env names it); eval.judge.base_url {self.cfg.base_url} is not local")
            self._client = OpenAI(base_url=self.cfg.base_url, api_key=self._key or DUMMY_KEY,
                                  max_retries=self.cfg.max_retries, timeout=self.cfg.timeout_s)
        return self._client

    def redact(self, text: str) -> str:
        return text.replace(self._key, "[redacted]") if len(self._key) >= 4 else text

    def _send(self, payload: dict[str, Any], key: str) -> dict[str, Any] | str:
        """The reply's cache entry, or why no reply came (a cap, or a request that failed)."""
        import openai

        with self._lock:
            if self.cfg.max_requests is not None and self.sent >= self.cfg.max_requests:
                return f"eval.judge.max_requests ({self.cfg.max_requests}) reached"
            self.sent += 1
        try:
            resp = self.client().chat.completions.create(**payload)
        except openai.OpenAIError as e:
            return self.redact(f"request failed: {type(e).__name__}: {str(e)[:300]}")
        usage = getattr(resp, "usage", None)
        entry = {"key": key, "model": payload["model"], "content": resp.choices[0].message.content or "",
                 "usage": {k: int(getattr(usage, k, 0) or 0) for k in USAGE_KEYS}}
        with self._lock:
            assert self._writer is not None, "use the judge as a context manager"
            self._writer.write(entry)
            self._entries[key] = entry
        return entry

    # -- rating ---------------------------------------------------------------------------------
    def rate(self, messages: Messages, parse: Parse) -> Rating:
        """Ask until a reply holds a rating, at most `max_retries + 1` times; each try is cached."""
        payload = {"model": self.cfg.model, "messages": messages, "temperature": 0.0}
        out = Rating()
        for attempt in range(self.cfg.max_retries + 1):
            key = hashlib.sha256(dumps({**payload, "try": attempt}).encode("utf-8")).hexdigest()
            entry = self._entries.get(key)
            if entry is not None:
                with self._lock:
                    self.cache_hits += 1
            else:
                entry = self._send(payload, key)
                if isinstance(entry, str):
                    out.error = entry
                    return out
            out.tries, out.reply = attempt + 1, entry["content"]
            for k in USAGE_KEYS:
                out.usage[k] += int(entry.get("usage", {}).get(k, 0))
            out.value = parse(out.reply)
            if out.value is not None:
                return out
        return out

    def rate_all(self, requests: list[Messages], parse: Parse, desc: str = "judge") -> list[Rating]:
        """Ratings in request order, `max_concurrency` at a time."""
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(self.cfg.max_concurrency) as pool:
            futures = [pool.submit(self.rate, m, parse) for m in requests]
            return [f.result() for f in tqdm(futures, desc=desc, unit="case", disable=not requests)]

    def stats(self) -> dict[str, Any]:
        return {"model": self.cfg.model, "base_url": self.cfg.base_url, "requests_sent": self.sent,
                "cache_hits": self.cache_hits, "cache": str(self.cache_path)}


def judge_cache(cfg: EvalRunConfig) -> Path:
    """Where the judge keeps its replies: `eval.judge.cache_dir`, else `<eval dir>/judge-cache`."""
    return Path(cfg.eval.judge.cache_dir) if cfg.eval.judge.cache_dir else cfg.layout().evals.judge_cache


def usage_total(ratings: list[Rating]) -> dict[str, int]:
    """The tokens of every reply the ratings rest on (cached ones included: each was paid once)."""
    return {k: sum(r.usage[k] for r in ratings) for k in USAGE_KEYS}


__all__ = ["Judge", "Rating", "last_bracket_rating", "first_integer_rating", "is_local", "judge_cache", "usage_total",
           "CACHE_NAME"]
