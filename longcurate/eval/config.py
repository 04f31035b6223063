"""Configuration of the eval stage (defaults live here), checked when it is built: a bad range, an
unknown name (backend, template, task of `eval.run`) or a judge setting that cannot work stops the
command before any work, whatever else the run would do first.

The defaults are sized for the embedded demo (2K-token probes, a few positions, a small needle grid on
a 2-core CPU); the published VaL setting is `probes.context_tokens=32768, probes.num_positions=800,
probes.num_sets=4, probes.span=50, probes.max_new_tokens=128`.

Generation length, one rule for every eval command (`GenerateConfig.new_tokens`): `--max-new-tokens N`
(a flag, so it wins over the same key in a file or a `key=value`) > `eval.generate.max_new_tokens` >
the benchmark's own length: `eval.probes.max_new_tokens`, `eval.needle.max_new_tokens`, and for
LongBench each task's entry of `eval.longbench.maxlen_file`, else LongBench's per-task lengths
(`longbench_defaults.DEFAULT_MAXLEN`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from longcurate.core.errors import ConfigError
from longcurate.core.holdout import HoldoutConfig
from longcurate.core.layout import RunLayout
from longcurate.eval import metrics, tasks
from longcurate.eval.backends import BACKENDS, TEMPLATES
from longcurate.eval.probes import TASKS as PROBE_TASKS
from longcurate.eval.scoring import needle_words

DTYPES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")  # core.models.pick_dtype's


def at_least(key: str, value: float | None, low: float, *, optional: bool = False) -> None:
    """`value >= low` (and finite); None only where `optional` (the key's `null` means "the default")."""
    if value is None and optional:
        return
    if value is None or not math.isfinite(value) or value < low:
        raise ConfigError(f"eval.{key} must be >= {low:g}{' (or null)' if optional else ''}, got {value!r}")


def one_of(key: str, value: Any, known: Any) -> None:
    if value not in known:
        raise ConfigError(f"eval.{key} must be one of {list(known)}, got {value!r}")


def http_url(key: str, value: str) -> None:
    url = urlparse(value or "")
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigError(f"eval.{key} must be an http(s) URL such as https://api.openai.com/v1, got {value!r}")


def distinct(key: str, values: list[Any], *, known: Any = None, empty_ok: bool = False) -> None:
    """A list of distinct entries (of `known`, when given); empty only where `empty_ok`."""
    bad = [v for v in values if known is not None and v not in known]
    if bad or (not values and not empty_ok) or len(set(values)) != len(values):
        what = f"entries of {list(known)}" if known is not None else "entries"
        raise ConfigError(f"eval.{key} must list distinct {what}, got {values}")


@dataclass
class LongBenchConfig:
    data_dir: str | None = None  # folder of LongBench-format <dataset>.jsonl files (offline)
    hf_dataset: str = "THUDM/LongBench"  # used only when allow_download is true and data_dir is None
    tasks: list[str] = field(default_factory=list)  # empty: every task found in data_dir
    prompt_file: str | None = None  # JSON {dataset: template} (LongBench's dataset2prompt format); default: ours
    maxlen_file: str | None = None  # JSON {dataset: max new tokens} (dataset2maxlen format); default: ours
    max_input_tokens: int | None = None  # default: the model's context limit minus the generation length
    e: bool = False  # LongBench-E length buckets
    limit: int | None = None  # per task

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in metrics.TASKS]
        if unknown:
            raise ConfigError(f"eval.longbench.tasks: unknown LongBench task {unknown[0]!r}; known: {', '.join(metrics.TASKS)}")
        distinct("longbench.tasks", self.tasks, empty_ok=True)
        if not self.hf_dataset:
            raise ConfigError("eval.longbench.hf_dataset must name a dataset (THUDM/LongBench)")
        at_least("longbench.max_input_tokens", self.max_input_tokens, 1, optional=True)
        at_least("longbench.limit", self.limit, 1, optional=True)


@dataclass
class OpenAIGenConfig:
    base_url: str = "https://api.openai.com/v1"  # any OpenAI-compatible endpoint (vLLM, llama.cpp server, ...)
    model: str | None = None  # the served model's name; default: the model being evaluated
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never stored or logged
    max_concurrency: int = 8
    # A failed attempt (no reply, 429 / 5xx / timeout, a reply with no answer in it: not JSON, no
    # choices, empty or null content) is tried again this many times, with exponential backoff.
    max_retries: int = 5
    timeout_s: float = 120.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    # after this many failed attempts in a row nothing more is sent this run (the items stay pending); null: never
    max_consecutive_failures: int | None = 20
    max_requests: int | None = None  # at most this many generation requests per run (the rest stay pending)

    def __post_init__(self) -> None:
        http_url("generate.openai.base_url", self.base_url)
        at_least("generate.openai.max_concurrency", self.max_concurrency, 1)
        at_least("generate.openai.max_retries", self.max_retries, 0)
        if not self.timeout_s > 0 or not math.isfinite(self.timeout_s):
            raise ConfigError(f"eval.generate.openai.timeout_s must be > 0, got {self.timeout_s!r}")
        at_least("generate.openai.max_consecutive_failures", self.max_consecutive_failures, 1, optional=True)
        at_least("generate.openai.max_requests", self.max_requests, 1, optional=True)
        if not (0 <= self.backoff_initial_s <= self.backoff_max_s) or not math.isfinite(self.backoff_max_s):
            raise ConfigError("eval.generate.openai: need 0 <= backoff_initial_s <= backoff_max_s (finite), got "
                              f"{self.backoff_initial_s} and {self.backoff_max_s}")


@dataclass
class VLLMConfig:
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None

    def __post_init__(self) -> None:
        at_least("generate.vllm.tensor_parallel_size", self.tensor_parallel_size, 1)
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(f"eval.generate.vllm.gpu_memory_utilization must be in (0, 1], got "
                              f"{self.gpu_memory_utilization!r}")
        at_least("generate.vllm.max_model_len", self.max_model_len, 1, optional=True)


@dataclass
class GenerateConfig:
    backend: str = "hf"  # hf | openai | vllm
    template: str = "chat"  # chat (the tokenizer's chat template; FILM [INST] when it has none) | film | raw
    # One generation length for every eval command and every LongBench task; unset (null): each
    # benchmark's own (probes.max_new_tokens, needle.max_new_tokens, LongBench's per-task lengths).
    max_new_tokens: int | None = None
    # hf: at most this many prompts per generate call ... (decoding one token costs about as much for 8
    # rows as for 1 on a CPU too: SmolLM2, 2K-token prompts, 32 new tokens, 8 rows: 4.5x fewer CPU-s a prompt)
    batch_size: int = 8
    max_batch_tokens: int = 32768  # ... and at most this many tokens: rows x (padded prompt + new tokens)
    dtype: str = "auto"  # hf: auto | float32 | bfloat16 | float16
    device: str | None = None  # hf: default cuda when available, else cpu
    max_context: int | None = None  # default: the model's max_position_embeddings
    # hf: prompts that start alike run their common prefix once into a KV cache (core.prefixes). Equal to
    # one prompt at a time in float32; in bfloat16 the other operation order changes results at bf16's
    # rounding (NLL up to ~2% relative, a greedy answer can take another token at a near-tie): false
    # scores every prompt whole, slower, for results comparable with an earlier per-prompt run.
    share_prefixes: bool = True
    openai: OpenAIGenConfig = field(default_factory=OpenAIGenConfig)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)

    def __post_init__(self) -> None:
        one_of("generate.backend", self.backend, BACKENDS)
        one_of("generate.template", self.template, TEMPLATES)
        one_of("generate.dtype", self.dtype, DTYPES)
        at_least("generate.max_new_tokens", self.max_new_tokens, 1, optional=True)
        at_least("generate.batch_size", self.batch_size, 1)
        at_least("generate.max_batch_tokens", self.max_batch_tokens, 1)
        at_least("generate.max_context", self.max_context, 1, optional=True)
        if self.device is not None and not re.fullmatch(r"cpu|mps|cuda(:\d+)?", self.device):
            raise ConfigError(f"eval.generate.device must be cpu, mps, cuda or cuda:N (or null), got {self.device!r}")

    def new_tokens(self, own: int) -> int:
        """The generation length of a benchmark (or LongBench task) whose own length is `own`:
        `max_new_tokens` when set (by --max-new-tokens or the config), else `own`."""
        return own if self.max_new_tokens is None else self.max_new_tokens


@dataclass
class ProbesConfig:
    tasks: list[str] = field(default_factory=lambda: ["document", "code", "database"])
    context_tokens: int = 2048  # context length of every probe, in tokens of the model's tokenizer
    num_positions: int = 4  # key positions spread evenly over the context (position_id)
    num_sets: int = 1  # independent contexts per task (set_id)
    span: int = 1  # positions per aggregation span (50 in the published setting)
    max_new_tokens: int = 32  # greedy answer length (the published VaL setting is 128); eval.generate.max_new_tokens wins
    output: str | None = None  # default: <output_dir>/eval/probes.jsonl
    # FILM's raw pieces (`VaLProbing/pieces/`: document_sentences.jsonl, code_functions.jsonl,
    # database_entities.jsonl, downloaded by the user): units from them instead of the corpus and the
    # standard library (`eval/pieces.py`). None: the corpus and the standard library.
    pieces_dir: str | None = None
    task_positions: dict[str, int] = field(default_factory=dict)  # per-task num_positions, e.g. {database: 750}

    def __post_init__(self) -> None:
        distinct("probes.tasks", self.tasks, known=PROBE_TASKS)
        if self.context_tokens < 64:
            raise ConfigError(f"eval.probes.context_tokens: need context_tokens >= 64, got {self.context_tokens}")
        for key in ("num_positions", "num_sets", "span", "max_new_tokens"):
            at_least(f"probes.{key}", getattr(self, key), 1)
        unknown = sorted(set(self.task_positions) - set(PROBE_TASKS))
        if unknown:
            raise ConfigError(f"eval.probes.task_positions: unknown task(s) {unknown}; known: {', '.join(PROBE_TASKS)}")
        for task, n in self.task_positions.items():
            at_least(f"probes.task_positions.{task}", n, 1)


@dataclass
class NeedleConfig:
    lengths: list[int] = field(default_factory=lambda: [512, 1024, 2048])  # haystack lengths in tokens
    depths: list[float] = field(default_factory=lambda: [0.0, 50.0, 100.0])  # needle depth in percent
    needle: str = ("The secret ingredient of the harbour bakery's famous plum cake is a spoonful of "
                   "green cardamom from Kerala.")
    question: str = "What is the secret ingredient of the harbour bakery's famous plum cake?"
    key_words: list[str] = field(default_factory=lambda: ["spoonful", "green", "cardamom", "kerala"])
    max_new_tokens: int = 32  # greedy answer length; eval.generate.max_new_tokens wins
    output: str | None = None  # default: <output_dir>/eval/needle.jsonl
    judge: bool = False  # also rate each answer 1-10 with eval.judge (LongAlign's needle rating), beside recall

    def __post_init__(self) -> None:
        if not self.lengths or any(n < 1 for n in self.lengths):
            raise ConfigError(f"eval.needle.lengths must be haystack lengths >= 1 token, got {self.lengths}")
        if not self.depths or any(not 0 <= d <= 100 for d in self.depths):
            raise ConfigError(f"eval.needle.depths must be percentages in [0, 100], got {self.depths}")
        if not self.needle.strip() or not self.question.strip() or not self.key_words:
            raise ConfigError("eval.needle: needle, question and key_words must not be empty")
        missing = [k for k in self.key_words if k.lower() not in needle_words(self.needle)]
        if missing:
            raise ConfigError(f"eval.needle.key_words {missing} do not occur in the needle {self.needle!r}")
        at_least("needle.max_new_tokens", self.max_new_tokens, 1)


@dataclass
class NLLConfig:
    """The answer NLL ("nll" in eval.run): teacher-forced, per item, for probes and held-out samples."""

    buckets: int = 5  # position buckets of equal width over [0, 1] (where the evidence sits)
    batch_tokens: int | None = None  # padded tokens per scoring batch (default: the engine's, per device)
    heldout: bool = True  # score the run's held-out samples (<output_dir>/heldout.jsonl) when synth wrote them

    def __post_init__(self) -> None:
        at_least("nll.buckets", self.buckets, 1)
        at_least("nll.batch_tokens", self.batch_tokens, 1, optional=True)


@dataclass
class JudgeConfig:
    """The rating judge of LongBench-Chat and of the needle's judge option: any OpenAI-compatible
    chat endpoint (`eval/judge.py`). The key is read from `$<api_key_env>` and never stored or logged."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4"  # LongAlign's and GATEAU's judge
    api_key_env: str = "OPENAI_API_KEY"  # unset: a dummy key for a local server (127.0.0.1), else an error
    max_concurrency: int = 4
    # a failed attempt (no reply, 429 / 5xx / timeout, a reply without a rating on the 1-10 scale) is
    # tried again this many times (5 tries, as released), with exponential backoff
    max_retries: int = 4
    timeout_s: float = 120.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    # after this many failed attempts in a row nothing more is sent this run (the cases stay pending); null: never
    max_consecutive_failures: int | None = 10
    cache_dir: str | None = None  # usable replies, keyed by their request (default <eval.output_dir>/judge-cache)
    max_requests: int | None = None  # at most this many requests per run (cases left unrated are rated next run)

    def __post_init__(self) -> None:
        http_url("judge.base_url", self.base_url)
        if not self.model:
            raise ConfigError("eval.judge.model must name the judge model (gpt-4)")
        at_least("judge.max_concurrency", self.max_concurrency, 1)
        at_least("judge.max_retries", self.max_retries, 0)
        if not self.timeout_s > 0 or not math.isfinite(self.timeout_s):
            raise ConfigError(f"eval.judge.timeout_s must be > 0, got {self.timeout_s!r}")
        at_least("judge.max_requests", self.max_requests, 1, optional=True)
        at_least("judge.max_consecutive_failures", self.max_consecutive_failures, 1, optional=True)
        if not (0 <= self.backoff_initial_s <= self.backoff_max_s) or not math.isfinite(self.backoff_max_s):
            raise ConfigError("eval.judge: need 0 <= backoff_initial_s <= backoff_max_s (finite), got "
                              f"{self.backoff_initial_s} and {self.backoff_max_s}")

    def rating_settings(self) -> dict[str, Any]:
        """What decides a rating besides its request (a step's settings): the judge, its endpoint, its tries."""
        return {"model": self.model, "base_url": self.base_url, "max_retries": self.max_retries}


@dataclass
class LongBenchChatConfig:
    """LongBench-Chat as LongAlign released it (`eval/longbench_chat.py`); results go to
    `<eval.output_dir>/<label>/longbench-chat/`."""

    data_dir: str | None = None  # test_cases.json, few_shots.json, prompt_fs.txt
    max_new_tokens: int = 1024  # the released generation length
    # one generation length; eval.generate.max_new_tokens (--max-new-tokens) wins
    max_input_tokens: int | None = None  # prompt cut in the middle beyond this (default: what the window leaves)
    limit: int | None = None  # the first N cases (default: eval.limit)

    def __post_init__(self) -> None:
        at_least("longbench_chat.max_new_tokens", self.max_new_tokens, 1)
        at_least("longbench_chat.max_input_tokens", self.max_input_tokens, 1, optional=True)
        at_least("longbench_chat.limit", self.limit, 1, optional=True)


@dataclass
class EvalConfig:
    longbench: LongBenchConfig = field(default_factory=LongBenchConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    needle: NeedleConfig = field(default_factory=NeedleConfig)
    nll: NLLConfig = field(default_factory=NLLConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    longbench_chat: LongBenchChatConfig = field(default_factory=LongBenchChatConfig)
    # What the stage evaluates: "checkpoint" is `checkpoint` below (skipped when it does not exist),
    # "base" is the run's `model`; anything else is a model name or path.
    models: list[str] = field(default_factory=lambda: ["checkpoint", "base"])
    checkpoint: str | None = None  # default: the run layout's trained model (<output_dir>/checkpoint, or train.output)
    run: list[str] = field(default_factory=lambda: ["probes", "needle"])  # the tasks of `eval run` (eval/tasks.py)
    output_dir: str | None = None  # default: <output_dir>/eval
    # Sentences and records for probes and needle: bundled, a JSON file in its format, or records (JSONL,
    # Parquet, a datasets folder). When synth reads it too (the bundled one always), eval keeps to its
    # held-out part (top-level `holdout`).
    corpus: str = "wiki-summaries"
    # The stage checks its items against the run's training data (eval/contamination.json); true makes
    # any eval answer, key or needle found there an error (a match only by a text of <= 2 words, such as
    # a one-word answer, is reported but does not count: such words occur in any large text).
    require_clean: bool = False
    limit: int | None = None  # at most this many items per model and command

    def __post_init__(self) -> None:
        unknown = [name for name in self.run if name not in tasks.TASKS]
        if unknown:
            raise ConfigError(f"eval.run: unknown task(s) {unknown}; the eval tasks are {', '.join(tasks.task_names())}")
        distinct("run", self.run)
        distinct("models", self.models, empty_ok=True)  # none: a config only asked for its layout
        if any(not m for m in self.models):
            raise ConfigError(f"eval.models entries must be model names or paths, got {self.models}")
        if not self.corpus:
            raise ConfigError("eval.corpus must name the corpus probes and needles are made of (wiki-summaries)")
        at_least("limit", self.limit, 1, optional=True)
        if "longbench-chat" in self.run and not self.longbench_chat.data_dir:
            raise ConfigError("eval.run has longbench-chat but eval.longbench_chat.data_dir is not set (a folder "
                              "with test_cases.json, few_shots.json and prompt_fs.txt)")


class SynthCorpus(Protocol):
    path: str | None


class SynthSection(Protocol):
    corpus: SynthCorpus


class EvalRunConfig(Protocol):
    """What eval reads of the run's config: the root `RunConfig` has it, and eval never imports the root
    config (or another stage). `synth.corpus.path` only says whether synth reads eval's corpus too, so
    that eval keeps to that corpus's held-out part."""

    seed: int
    model: str
    allow_download: bool
    trust_remote_code: bool
    holdout: HoldoutConfig
    eval: EvalConfig
    synth: SynthSection

    def layout(self) -> RunLayout: ...


__all__ = ["EvalConfig", "GenerateConfig", "OpenAIGenConfig", "VLLMConfig", "ProbesConfig", "NeedleConfig", "NLLConfig",
           "JudgeConfig", "LongBenchConfig", "LongBenchChatConfig", "EvalRunConfig", "DTYPES"]
