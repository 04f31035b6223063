"""What the openai QA backend has spent, and the hard caps on what it may still send (the backend's
`core.endpoint.Ledger`).

Counts come from the replies' `usage`; a request admitted under `budget_usd` reserves its worst case
(the whole prompt at ~3 characters per token plus the full output allowance) until it returns, so
concurrent requests can never overshoot the budget together. A cap that refuses a request stops the
endpoint (`core.endpoint.Endpoint.stop`): nothing more is sent in this process.
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


@dataclass
class OpenAIStats:
    requests: int = 0  # HTTP requests sent (retries included; cache hits not)
    cache_hits: int = 0
    failures: int = 0  # items that ended with an error after being tried
    ungrounded: int = 0  # of which: answers rejected by validation
    skipped_budget: int = 0  # items not sent because budget_usd would be exceeded
    skipped_max_requests: int = 0  # items not sent because max_requests was reached
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # from the replies' usage
    unmetered_cost_usd: float = 0.0  # estimated cost of attempts that died or replied without a usage block


class Meter:
    """Counts, cost and the caps of one backend; all calls happen on one event loop (no locks)."""

    def __init__(self, cfg: OpenAIConfig):
        self.cfg = cfg
        self.counts = OpenAIStats()
        self.inflight_usd = 0.0

    def estimate_usd(self, payload: dict[str, Any]) -> tuple[float, float]:
        """Worst-case (input, total) cost of one request: ~3 characters per input token (English
        averages ~4, so this over-estimates) and the full output allowance."""
        chars = sum(len(m["content"]) for m in payload["messages"])
        prompt_tokens = math.ceil(chars / 3) + 8 * len(payload["messages"])
        inp = prompt_tokens * self.cfg.price_input_per_1m / 1e6
        return inp, inp + self.cfg.max_output_tokens * self.cfg.price_output_per_1m / 1e6

    def admit(self, payload: dict[str, Any]) -> str | None:
        """Reserve one request under the hard caps, or say which cap refuses it (no await: atomic in
        the loop). `release` the reservation when the request returns."""
        cfg = self.cfg
        estimate = self.estimate_usd(payload)[1]
        if cfg.max_requests is not None and self.counts.requests >= cfg.max_requests:
            log.warning("max_requests=%d reached: no further requests are sent", cfg.max_requests)
            return MAX_REQUESTS_REACHED
        spent = self.counts.cost_usd + self.counts.unmetered_cost_usd
        if cfg.budget_usd is not None and spent + self.inflight_usd + estimate > cfg.budget_usd:
            log.warning("budget_usd=%.4f would be exceeded (spent %.4f, in flight %.4f): no further requests "
                        "are sent", cfg.budget_usd, spent, self.inflight_usd)
            return BUDGET_EXHAUSTED
        self.counts.requests += 1
        self.inflight_usd += estimate
        return None

    def release(self, payload: dict[str, Any]) -> None:
        self.inflight_usd -= self.estimate_usd(payload)[1]

    def paid(self, usage: Any) -> dict[str, float]:
        """Add a reply's `usage` to the counts; its tokens and cost for the record."""
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = pt * self.cfg.price_input_per_1m / 1e6 + ct * self.cfg.price_output_per_1m / 1e6
        self.counts.prompt_tokens += pt
        self.counts.completion_tokens += ct
        self.counts.cost_usd += cost
        return {"prompt_tokens": pt, "completion_tokens": ct, "cost_usd": round(cost, 10)}

    def unmetered(self, payload: dict[str, Any], replied: bool) -> None:
        """A timeout may have cost the input; a reply without usage, at most the worst case."""
        inp, total = self.estimate_usd(payload)
        self.counts.unmetered_cost_usd += total if replied else inp

    def skipped(self, reason: str | None) -> None:
        """An item that a cap kept from being sent."""
        if reason == BUDGET_EXHAUSTED:
            self.counts.skipped_budget += 1
        elif reason == MAX_REQUESTS_REACHED:
            self.counts.skipped_max_requests += 1

    def stats(self) -> dict[str, Any]:
        out = asdict(self.counts)
        out["cost_usd"] = round(out["cost_usd"], 8)
        out["unmetered_cost_usd"] = round(out["unmetered_cost_usd"], 8)
        return out
