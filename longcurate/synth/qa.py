"""The QA-generation protocol: a batch of requests in, results in the same order out.

Backends (`template`, `openai`) are looked up by name through a lazy import map; the pipeline knows
them only through `QABackend`. A failed result says what the pipeline should do about it
(`QAResult.failure`): draw another request for the sample (the answer was unusable), leave the sample
pending for a later run (the endpoint failed, or a cap stopped the backend), or record the sample as
refused (the server turned this one item down; `synth.retry_failed` tries it again).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable


if TYPE_CHECKING:
    from longcurate.synth.config import SynthRun


@dataclass(frozen=True)
class SegmentText:
    """One corpus segment given to a QA generator."""

    doc_id: str
    title: str
    index: int  # position of the segment within its document
    text: str


@dataclass(frozen=True)
class QARequest:
    request_id: str  # stable: the same request always has the same id (cache key part)
    kind: str  # "fine" (one segment) or "multihop" (>= 2 segments: of one document, or of several)
    qtype: str  # e.g. "sentence_recall", "order", or "openai:fine"
    segments: tuple[SegmentText, ...]
    seed: int = 0


@dataclass
class Evidence:
    """A verbatim span of a request segment that the answer rests on (char offsets in that segment)."""

    segment: int  # index into QARequest.segments
    char_start: int
    char_end: int


UNUSABLE = "unusable"  # the answer cannot be used (ungrounded, malformed, no question): draw another request
PENDING = "pending"  # not answered for a reason outside the item (endpoint down, cap hit): a later run retries
REFUSED = "refused"  # the server refused this item (HTTP 4xx other than 429): recorded, retried on request


@dataclass
class QAResult:
    request_id: str
    question: str | None = None
    answer: str | None = None
    # A fragment of the question that locates the evidence; no filler may contain it (ambiguity check).
    key_fragments: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    generator: str = ""
    error: str | None = None  # set when this item failed; the others are unaffected
    usage: dict[str, float] = field(default_factory=dict)
    failure: str = UNUSABLE  # what a failure means for the sample (UNUSABLE, PENDING, REFUSED)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.question) and bool(self.answer)


@runtime_checkable
class QABackend(Protocol):
    """What the pipeline asks of a QA generator; `template` and `openai` implement it."""

    name: str  # the backend's name in `synth.backend` (it also prefixes the openai question types)

    @classmethod
    def from_config(cls, run_cfg: SynthRun) -> QABackend:
        """The backend for a run (its section of the config, the run's layout and seed)."""
        ...

    def generate(self, requests: list[QARequest]) -> list[QAResult]:
        """Results in the same order as the requests; a failure is a result with `error` set."""
        ...

    @property
    def exhausted(self) -> bool:
        """True once the backend stopped for this run (a request or budget cap, a rejected key, the
        circuit breaker): the pipeline asks no more and leaves the remaining samples pending."""
        ...

    @property
    def stop_reason(self) -> str | None:
        """Why the backend stopped (None while it has not)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for the run's stats and manifest (requests, failures, cost, ...)."""
        ...


BACKENDS = {
    "template": "longcurate.synth.template_qa:TemplateBackend",
    "openai": "longcurate.synth.openai_qa:OpenAIBackend",
}


def backend_class(name: str) -> type[QABackend]:
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
