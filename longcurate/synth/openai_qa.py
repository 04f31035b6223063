"""QA generation through any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server).

Why the machinery: paid APIs fail transiently and cost money, so the backend
- retries 429 / 5xx / timeouts / connection errors / malformed or truncated JSON with its own
  exponential backoff (the SDK's retries are off); the jitter is a hash of the request id, so a run is
  reproducible; an item that keeps failing gets `error` set and the others are unaffected;
- keeps at most `max_concurrency` requests in flight (asyncio.Semaphore);
- caches every answer on disk under a hash of the request, so a re-run never pays twice;
- counts tokens and cost from `usage` and stops sending at `max_requests` / `budget_usd`
  (spent + the worst-case cost of the requests in flight);
- validates answers: JSON with question / answer / evidence, every evidence quote found verbatim
  (up to whitespace) in the given segments, multi-hop evidence from >= 2 segments.

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
import ipaddress
import json
import logging
import math
import os
import re
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

from longcurate.core.config import ConfigError
from longcurate.synth.cache import ResponseCache, request_key
from longcurate.synth.config import OpenAIConfig
from longcurate.synth.openai_prompts import PROMPT_VERSION, messages_for_request
from longcurate.synth.qa import Evidence, QARequest, QAResult, SegmentText

log = logging.getLogger(__name__)

DUMMY_KEY = "EMPTY"  # what local servers (vLLM, llama.cpp) accept when they check no key
MIN_QUOTE_WORDS = 3  # shorter evidence quotes ("the war") prove nothing and are ignored
KEY_FRAGMENT_WORDS = 8
BUDGET_EXHAUSTED = "budget exhausted"
MAX_REQUESTS_REACHED = "max_requests reached"

# Questions that point at the prompt instead of standing alone inside a long context.
_CONTEXT_REFERENCE = re.compile(
    r"\b(?:based on|according to) the (?:given |provided |above |following )?"
    r"(?:context|passages?|text|excerpts?|segments?|documents?)\b"
    r"|\b(?:in|from) the (?:context|passages?|excerpts?)\b"
    r"|\bthe (?:given|provided|above|following) (?:context|passages?|text|excerpts?|segments?|documents?)\b"
    r"|\b(?:passage|segment)s? \d",
    re.I)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S | re.I)
_QUOTE_CHARS = "\"'“”‘’«»`"


class AnswerFormatError(ValueError):
    """The model's reply is not the QA JSON asked for (retryable: a new sample may be fine)."""


class UngroundedError(ValueError):
    """The reply parses but its evidence is not in the segments (not retried: same prompt, same answer)."""


# ----------------------------------------------------------------------------------------------------
# API key
# ----------------------------------------------------------------------------------------------------

def is_local_url(base_url: str) -> bool:
    host = (urlparse(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(cfg: OpenAIConfig) -> str:
    """The key from `$<api_key_env>`; a dummy for local servers; else a clear error (naming the
    variable, never a value)."""
    key = os.environ.get(cfg.api_key_env, "").strip()
    if key:
        return key
    if is_local_url(cfg.base_url):
        return DUMMY_KEY
    raise ConfigError(
        f"the openai QA backend needs an API key: set the environment variable {cfg.api_key_env} "
        f"(or name another variable with synth.openai.api_key_env); base_url {cfg.base_url} is not local")


class _Redactor:
    def __init__(self, secret: str):
        self.secret = secret if secret and secret != DUMMY_KEY and len(secret) >= 4 else ""

    def __call__(self, text: str) -> str:
        return text.replace(self.secret, "[redacted]") if self.secret else text


# ----------------------------------------------------------------------------------------------------
# Answer parsing and grounding (pure functions; tested directly)
# ----------------------------------------------------------------------------------------------------

def parse_answer(content: str | None, finish_reason: str | None = None) -> dict[str, Any]:
    """The QA JSON from a reply: {"question": str, "answer": str, "evidence": [str, ...]}.
    Raises AnswerFormatError (malformed / truncated / missing or empty fields)."""
    if content is None or not content.strip():
        raise AnswerFormatError("empty reply")
    text = content.strip()
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        obj = None
        if 0 <= start < end:
            try:
                obj = json.loads(text[start:end + 1])
            except json.JSONDecodeError:
                obj = None
        if obj is None:
            truncated = finish_reason == "length" or not text.rstrip().endswith("}")
            what = "truncated JSON" if truncated and "{" in text else "malformed JSON"
            raise AnswerFormatError(f"{what} (finish_reason={finish_reason})") from None
    if not isinstance(obj, dict):
        raise AnswerFormatError("malformed JSON: not an object")
    out: dict[str, Any] = {}
    for name in ("question", "answer"):
        value = obj.get(name)
        if not isinstance(value, str) or not value.strip():
            raise AnswerFormatError(f"missing or empty field {name!r}")
        out[name] = value.strip()
    evidence = obj.get("evidence")
    if isinstance(evidence, str):
        evidence = [evidence]
    if not isinstance(evidence, list) or not evidence:
        raise AnswerFormatError("missing or empty field 'evidence'")
    quotes = [q.strip() for q in evidence if isinstance(q, str) and q.strip()]
    if not quotes:
        raise AnswerFormatError("field 'evidence' holds no quote")
    out["evidence"] = quotes
    return out


def normalize_ws(text: str) -> tuple[str, list[int]]:
    """Collapse whitespace runs to one space and strip; also return, for each kept character, its
    offset in `text` (so a match in the normalised text maps back to original offsets)."""
    chars: list[str] = []
    index: list[int] = []
    pending_space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            pending_space = bool(chars)
            continue
        if pending_space:
            chars.append(" ")
            index.append(i - 1)
            pending_space = False
        chars.append(ch)
        index.append(i)
    return "".join(chars), index


def clean_quote(quote: str) -> str:
    """Whitespace-normalised quote without the decoration models add: surrounding quotation marks
    and leading / trailing ellipses."""
    q = " ".join(quote.split())
    for _ in range(3):
        before = q
        q = q.strip(_QUOTE_CHARS).strip()
        for ell in ("...", "…"):
            if q.startswith(ell):
                q = q[len(ell):].strip()
            if q.endswith(ell):
                q = q[: -len(ell)].strip()
        if q == before:
            break
    return q


def locate_quote(quote: str, segments: Sequence[SegmentText]) -> Evidence | None:
    """The first segment span equal to `quote` up to whitespace (a trailing full stop may differ)."""
    q = clean_quote(quote)
    if not q:
        return None
    candidates = [q]
    if q[-1] in ".,;:" and len(q) > 1:
        candidates.append(q[:-1].rstrip())
    for cand in candidates:
        for i, seg in enumerate(segments):
            norm, index = normalize_ws(seg.text)
            pos = norm.find(cand)
            if pos >= 0:
                return Evidence(segment=i, char_start=index[pos], char_end=index[pos + len(cand) - 1] + 1)
    return None


def ground(kind: str, parsed: dict[str, Any], segments: Sequence[SegmentText]) -> tuple[list[Evidence], list[str]]:
    """Evidence spans and key fragments for a parsed answer; raises UngroundedError when a quote is
    not in the segments, no usable quote remains, or multi-hop evidence covers < 2 segments."""
    if _CONTEXT_REFERENCE.search(parsed["question"]):
        raise UngroundedError("question refers to the context instead of standing alone")
    spans: list[Evidence] = []
    for quote in parsed["evidence"]:
        if len(clean_quote(quote).split()) < MIN_QUOTE_WORDS:
            continue
        ev = locate_quote(quote, segments)
        if ev is None:
            raise UngroundedError(f"evidence quote not found in the segments: {quote[:80]!r}")
        if all((e.segment, e.char_start, e.char_end) != (ev.segment, ev.char_start, ev.char_end) for e in spans):
            spans.append(ev)
    if not spans:
        raise UngroundedError(f"no evidence quote of at least {MIN_QUOTE_WORDS} words")
    covered = {e.segment for e in spans}
    if kind == "multihop" and len(covered) < 2:
        raise UngroundedError(f"multi-hop evidence covers {len(covered)} segment(s); at least 2 needed")
    fragments: list[str] = []
    for e in spans:
        frag = key_fragment(segments[e.segment].text[e.char_start:e.char_end])
        if frag and frag not in fragments:
            fragments.append(frag)
    return spans, fragments


def key_fragment(span: str, max_words: int = KEY_FRAGMENT_WORDS) -> str:
    """A short verbatim piece of an evidence span for the assembler's ambiguity check: up to
    `max_words` words of the first line of the span that has >= MIN_QUOTE_WORDS words (a fragment
    never crosses a line break, so a plain substring test finds it in a filler)."""
    lines = [ln for ln in span.splitlines() if ln.strip()]
    if not lines:
        return ""
    line = next((ln for ln in lines if len(ln.split()) >= MIN_QUOTE_WORDS), lines[0])
    words = list(re.finditer(r"\S+", line))[:max_words]
    return line[words[0].start():words[-1].end()]


# ----------------------------------------------------------------------------------------------------
# The backend
# ----------------------------------------------------------------------------------------------------

@dataclass
class OpenAIStats:
    requests: int = 0  # HTTP requests sent (retries included; cache hits not)
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0  # items that ended with an error after being tried
    ungrounded: int = 0  # of which: answers rejected by validation
    skipped_budget: int = 0  # items not sent because budget_usd would be exceeded
    skipped_max_requests: int = 0  # items not sent because max_requests was reached
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # from the responses' usage
    unmetered_cost_usd: float = 0.0  # estimated input cost of attempts that died without a usage block


class OpenAIBackend:
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
        self._redact = _Redactor(self._api_key)
        self._stats = OpenAIStats()
        self._inflight_usd = 0.0
        self._stopped: str | None = None  # once a hard stop is hit, nothing more is sent

    @classmethod
    def from_config(cls, run_cfg: Any) -> "OpenAIBackend":
        cfg: OpenAIConfig = run_cfg.synth.openai
        cache_dir = cfg.cache_dir or str(Path(run_cfg.output_dir) / "openai-cache")
        return cls(cfg, cache_dir, seed=run_cfg.seed)

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
        """True once a hard stop (max_requests, budget_usd, a rejected key) was hit: callers stop asking."""
        return self._stopped is not None

    def stats(self) -> dict[str, Any]:
        out = asdict(self._stats)
        out["cost_usd"] = round(out["cost_usd"], 8)
        out["unmetered_cost_usd"] = round(out["unmetered_cost_usd"], 8)
        out["stopped"] = self._stopped
        out["model"] = self.cfg.model
        out["prompt_version"] = PROMPT_VERSION
        return out

    async def agenerate(self, requests: list[QARequest]) -> list[QAResult]:
        """The async core: identical requests (same cache key) are sent once and share the answer."""
        import openai
        from tqdm.auto import tqdm

        for name in ("httpx2", "httpx", "httpcore2", "httpcore"):  # one INFO line per request otherwise
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)

        sem = asyncio.Semaphore(self.cfg.max_concurrency)
        order: list[tuple[QARequest, str | None, str | None]] = []  # (request, cache key, invalid reason)
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
        results: list[QAResult] = []
        for req, key, err in order:
            if key is None:
                self._stats.failures += 1
                results.append(QAResult(request_id=req.request_id, generator=self._generator(req), error=err))
                continue
            res = tasks[key].result()
            if res.request_id != req.request_id:  # a duplicate of an earlier request: same answer, own id
                res = replace(res, request_id=req.request_id, key_fragments=list(res.key_fragments),
                              evidence=[replace(e) for e in res.evidence], usage=dict(res.usage))
            results.append(res)
        st = self._stats
        log.info("openai QA: %d/%d ok; so far: %d requests sent (%d retries), %d cache hits, %d failures, "
                 "%d+%d tokens, $%.4f", sum(r.ok for r in results), len(results), st.requests, st.retries,
                 st.cache_hits, st.failures, st.prompt_tokens, st.completion_tokens, st.cost_usd)
        return results

    # -- one request ------------------------------------------------------------------------------
    def _generator(self, req: QARequest) -> str:
        return f"openai:{self.cfg.model}:{req.kind}"

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
        """Worst-case (input, total) cost of one request: ~3 characters per input token (English
        averages ~4, so this over-estimates) and the full output allowance."""
        chars = sum(len(m["content"]) for m in payload["messages"])
        prompt_tokens = math.ceil(chars / 3) + 8 * len(payload["messages"])
        inp = prompt_tokens * self.cfg.price_input_per_1m / 1e6
        return inp, inp + self.cfg.max_output_tokens * self.cfg.price_output_per_1m / 1e6

    def _admit(self, estimate_usd: float) -> str | None:
        """Reserve one request under the hard caps, or say why not (no await: atomic in the loop)."""
        if self._stopped:
            return self._stopped
        cfg = self.cfg
        if cfg.max_requests is not None and self._stats.requests >= cfg.max_requests:
            self._stopped = MAX_REQUESTS_REACHED
            log.warning("max_requests=%d reached: no further requests are sent", cfg.max_requests)
            return self._stopped
        spent = self._stats.cost_usd + self._stats.unmetered_cost_usd
        if cfg.budget_usd is not None and spent + self._inflight_usd + estimate_usd > cfg.budget_usd:
            self._stopped = BUDGET_EXHAUSTED
            log.warning("budget_usd=%.4f would be exceeded (spent %.4f, in flight %.4f): no further requests "
                        "are sent", cfg.budget_usd, spent, self._inflight_usd)
            return self._stopped
        self._stats.requests += 1
        self._inflight_usd += estimate_usd
        return None

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

    def _account(self, usage: Any) -> tuple[int, int, float]:
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = pt * self.cfg.price_input_per_1m / 1e6 + ct * self.cfg.price_output_per_1m / 1e6
        self._stats.prompt_tokens += pt
        self._stats.completion_tokens += ct
        self._stats.cost_usd += cost
        return pt, ct, cost

    async def _run_one(self, client: Any, sem: asyncio.Semaphore, req: QARequest, key: str,
                       payload: dict[str, Any], pbar: Any) -> QAResult:
        try:
            return await self._attempts(client, sem, req, key, payload)
        except Exception as e:  # a bug or an unexpected library error fails this item only
            self._stats.failures += 1
            msg = self._redact(f"unexpected error: {type(e).__name__}: {e}")
            log.warning("%s: %s", req.request_id, msg)
            return QAResult(request_id=req.request_id, generator=self._generator(req), error=msg)
        finally:
            pbar.update(1)

    async def _attempts(self, client: Any, sem: asyncio.Semaphore, req: QARequest, key: str,
                        payload: dict[str, Any]) -> QAResult:
        import openai

        cached = self.cache.get(key)
        if cached is not None:
            self._stats.cache_hits += 1
            return self._result(req, cached["content"], cached.get("finish_reason"), cached.get("usage") or {})
        input_usd, estimate_usd = self._estimate_usd(payload)
        tries = self.cfg.max_retries + 1
        last_error = ""
        retry_after: float | None = None
        for attempt in range(tries):
            if attempt:
                self._stats.retries += 1
                delay = self._backoff_s(req.request_id, attempt, retry_after)
                log.debug("%s: retry %d/%d in %.2fs after %s", req.request_id, attempt, self.cfg.max_retries,
                         delay, last_error)
                await asyncio.sleep(delay)
            retry_after = None
            async with sem:
                stop = self._admit(estimate_usd)
                if stop is not None:
                    if stop == BUDGET_EXHAUSTED:
                        self._stats.skipped_budget += 1
                    else:
                        self._stats.skipped_max_requests += 1
                    return QAResult(request_id=req.request_id, generator=self._generator(req), error=stop)
                try:
                    response = await client.chat.completions.create(**payload)
                except openai.APITimeoutError:
                    self._stats.unmetered_cost_usd += input_usd
                    last_error = f"timeout after {self.cfg.timeout_s:g}s"
                    continue
                except openai.APIConnectionError as e:
                    cause = e.__cause__ or e.__context__
                    last_error = self._redact(f"connection error ({type(cause).__name__ if cause else 'unknown'})")
                    continue
                except openai.APIStatusError as e:
                    last_error = self._redact(f"HTTP {e.status_code}: {_status_message(e)}")
                    if e.status_code == 429 or e.status_code >= 500 or e.status_code in (408, 409):
                        retry_after = _retry_after_s(e)
                        continue
                    if e.status_code in (401, 403, 404):  # wrong key / model / URL: every item would fail
                        self._stopped = f"stopped: {last_error}"
                        log.error("%s: %s; no further requests are sent", req.request_id, last_error)
                    self._stats.failures += 1
                    return QAResult(request_id=req.request_id, generator=self._generator(req), error=last_error)
                except ValueError as e:  # a 200 whose body is not JSON (the SDK's json.loads failed)
                    last_error = self._redact(f"malformed response body: {type(e).__name__}")
                    continue
                finally:
                    self._inflight_usd -= estimate_usd
            usage = getattr(response, "usage", None)
            if usage is None:
                self._stats.unmetered_cost_usd += estimate_usd
                usage_d: dict[str, float] = {}
            else:
                pt, ct, cost = self._account(usage)
                usage_d = {"prompt_tokens": pt, "completion_tokens": ct, "cost_usd": round(cost, 10)}
            try:
                choice = response.choices[0]
                content, finish = choice.message.content, choice.finish_reason
            except (AttributeError, IndexError, TypeError):
                last_error = "malformed response: no choices"
                continue
            try:
                parse_answer(content, finish)
            except AnswerFormatError as e:
                last_error = f"invalid answer: {e}"
                continue
            self.cache.put(key, {"model": self.cfg.model, "prompt_version": PROMPT_VERSION,
                                 "request": payload,
                                 "content": content, "finish_reason": finish, "usage": usage_d})
            return self._result(req, content, finish, usage_d)
        self._stats.failures += 1
        msg = f"gave up after {tries} tries: {last_error}"
        log.warning("%s: %s", req.request_id, msg)
        return QAResult(request_id=req.request_id, generator=self._generator(req), error=msg)

    def _result(self, req: QARequest, content: str, finish: str | None, usage: dict[str, float]) -> QAResult:
        """Validate a reply (fresh or cached: the same content always gives the same result)."""
        gen = self._generator(req)
        try:
            parsed = parse_answer(content, finish)
            evidence, fragments = ground(req.kind, parsed, req.segments)
        except (AnswerFormatError, UngroundedError) as e:
            self._stats.failures += 1
            if isinstance(e, UngroundedError):
                self._stats.ungrounded += 1
            return QAResult(request_id=req.request_id, generator=gen, error=f"ungrounded: {e}"
                            if isinstance(e, UngroundedError) else f"invalid answer: {e}", usage=dict(usage))
        return QAResult(request_id=req.request_id, question=parsed["question"], answer=parsed["answer"],
                        key_fragments=fragments, evidence=evidence, generator=gen, usage=dict(usage))


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
