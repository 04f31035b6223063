"""What the openai backend has spent, and the hard caps on what it may still send.

Counts come from the responses' `usage`; a request admitted under `budget_usd` reserves its worst case
(the whole prompt at ~3 characters per token plus the full output allowance) until it returns, so
concurrent requests can never overshoot the budget together. The circuit breaker counts requests in a
row that failed at the endpoint (any answer from it resets the count) and stops the meter after
`max_consecutive_failures`. Once stopped, the meter stays stopped: nothing more is sent in this process.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from longcurate.synth.config import OpenAIConfig

log = logging.getLogger(__name__)

BUDGET_EXHAUSTED = "budget exhausted"
MAX_REQUESTS_REACHED = "max_requests reached"
CIRCUIT_OPEN = "circuit breaker"


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


class Meter:
    """Counts, cost and the caps of one backend; all calls happen on one event loop (no locks)."""

    def __init__(self, cfg: OpenAIConfig):
        self.cfg = cfg
        self.counts = OpenAIStats()
        self.inflight_usd = 0.0
        self.stopped: str | None = None  # once a hard stop is hit, nothing more is sent
        self.failure_streak = 0  # requests in a row that failed at the endpoint

    def estimate_usd(self, payload: dict[str, Any]) -> tuple[float, float]:
        """Worst-case (input, total) cost of one request: ~3 characters per input token (English
        averages ~4, so this over-estimates) and the full output allowance."""
        chars = sum(len(m["content"]) for m in payload["messages"])
        prompt_tokens = math.ceil(chars / 3) + 8 * len(payload["messages"])
        inp = prompt_tokens * self.cfg.price_input_per_1m / 1e6
        return inp, inp + self.cfg.max_output_tokens * self.cfg.price_output_per_1m / 1e6

    def admit(self, estimate_usd: float) -> str | None:
        """Reserve one request under the hard caps, or say why not and count the item as skipped
        (no await: atomic in the loop). `release` the reservation when the request returns."""
        stop = self._refusal(estimate_usd)
        if stop is not None:
            if stop == BUDGET_EXHAUSTED:
                self.counts.skipped_budget += 1
            else:
                self.counts.skipped_max_requests += 1
            return stop
        self.counts.requests += 1
        self.inflight_usd += estimate_usd
        return None

    def _refusal(self, estimate_usd: float) -> str | None:
        if self.stopped:
            return self.stopped
        cfg = self.cfg
        if cfg.max_requests is not None and self.counts.requests >= cfg.max_requests:
            log.warning("max_requests=%d reached: no further requests are sent", cfg.max_requests)
            return self.stop(MAX_REQUESTS_REACHED)
        spent = self.counts.cost_usd + self.counts.unmetered_cost_usd
        if cfg.budget_usd is not None and spent + self.inflight_usd + estimate_usd > cfg.budget_usd:
            log.warning("budget_usd=%.4f would be exceeded (spent %.4f, in flight %.4f): no further requests "
                        "are sent", cfg.budget_usd, spent, self.inflight_usd)
            return self.stop(BUDGET_EXHAUSTED)
        return None

    def release(self, estimate_usd: float) -> None:
        self.inflight_usd -= estimate_usd

    def stop(self, reason: str) -> str:
        """Send nothing more (a cap was hit, or the server rejected the key, model or URL)."""
        self.stopped = reason
        return reason

    def endpoint_ok(self) -> None:
        """The endpoint answered: it works, whatever the answer is worth."""
        self.failure_streak = 0

    def endpoint_failed(self, error: str) -> None:
        """A request failed at the endpoint; too many in a row stop the meter."""
        self.failure_streak += 1
        limit = self.cfg.max_consecutive_failures
        if limit is not None and self.failure_streak >= limit and self.stopped is None:
            log.error("%d requests in a row failed at the endpoint (last: %s): no further requests are sent",
                      self.failure_streak, error)
            self.stop(f"{CIRCUIT_OPEN}: {self.failure_streak} requests in a row failed at the endpoint "
                      f"(last: {error})")

    def account(self, usage: Any) -> tuple[int, int, float]:
        """Add a response's `usage` to the counts: (prompt tokens, completion tokens, cost)."""
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = pt * self.cfg.price_input_per_1m / 1e6 + ct * self.cfg.price_output_per_1m / 1e6
        self.counts.prompt_tokens += pt
        self.counts.completion_tokens += ct
        self.counts.cost_usd += cost
        return pt, ct, cost

    def stats(self) -> dict[str, Any]:
        out = asdict(self.counts)
        out["cost_usd"] = round(out["cost_usd"], 8)
        out["unmetered_cost_usd"] = round(out["unmetered_cost_usd"], 8)
        out["stopped"] = self.stopped
        return out
