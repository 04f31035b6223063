"""Configuration of the eval stage (defaults live here).

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

from dataclasses import dataclass, field


@dataclass
class LongBenchConfig:
    data_dir: str | None = None  # folder of LongBench-format <dataset>.jsonl files (offline)
    hf_dataset: str = "THUDM/LongBench"  # used only when allow_download is true and data_dir is None
    tasks: list[str] = field(default_factory=list)  # empty: every task found in data_dir
    prompt_file: str | None = None  # JSON {dataset: template} (LongBench's dataset2prompt format); default: ours
    maxlen_file: str | None = None  # JSON {dataset: max new tokens} (dataset2maxlen format); default: ours
    max_input_tokens: int | None = None  # default: the model's context limit minus the generation length
    e: bool = False  # LongBench-E length buckets
    # Gone: LongBench results go to <eval.output_dir>/<label>/longbench/ like every eval result, so that
    # two models never share a prediction file. Kept only to say so when a config still sets it.
    output_dir: str | None = None
    limit: int | None = None  # per task

    def __post_init__(self) -> None:
        if self.output_dir is not None:
            from longcurate.core.errors import ConfigError

            raise ConfigError("eval.longbench.output_dir is gone: LongBench results go to "
                              "<eval.output_dir>/<label>/longbench/ (set eval.output_dir, and --label to name them)")


@dataclass
class OpenAIGenConfig:
    base_url: str = "https://api.openai.com/v1"  # any OpenAI-compatible endpoint (vLLM, llama.cpp server, ...)
    model: str | None = None  # the served model's name; default: the model being evaluated
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never stored or logged
    max_concurrency: int = 8
    max_retries: int = 5  # the SDK retries 429 / 5xx / timeouts with backoff
    timeout_s: float = 120.0


@dataclass
class VLLMConfig:
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None


@dataclass
class GenerateConfig:
    backend: str = "hf"  # hf | openai | vllm
    template: str = "chat"  # chat (the tokenizer's chat template; FILM [INST] when it has none) | film | raw
    # One generation length for every eval command and every LongBench task; unset (null): each
    # benchmark's own (probes.max_new_tokens, needle.max_new_tokens, LongBench's per-task lengths).
    max_new_tokens: int | None = None
    batch_size: int = 1  # hf: prompts per generate call (CPU: 1, batching gains nothing there; GPU: 8-32) ...
    max_batch_tokens: int = 16384  # ... and at most this many (padded) prompt tokens
    dtype: str = "auto"  # hf: auto | float32 | bfloat16
    device: str | None = None  # hf: default cuda when available, else cpu
    max_context: int | None = None  # default: the model's max_position_embeddings
    openai: OpenAIGenConfig = field(default_factory=OpenAIGenConfig)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)

    def __post_init__(self) -> None:
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            from longcurate.core.errors import ConfigError

            raise ConfigError(f"eval.generate.max_new_tokens must be >= 1 (or null), got {self.max_new_tokens}")

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
        from longcurate.core.errors import ConfigError

        unknown = sorted(set(self.task_positions) - {"document", "code", "database"})
        if unknown:
            raise ConfigError(f"eval.probes.task_positions: unknown task(s) {unknown}; known: document, code, database")


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


@dataclass
class NLLConfig:
    """The answer NLL ("nll" in eval.run): teacher-forced, per item, for probes and held-out samples."""

    buckets: int = 5  # position buckets of equal width over [0, 1] (where the evidence sits)
    batch_tokens: int | None = None  # padded tokens per scoring batch (default: the engine's, per device)
    heldout: bool = True  # score the run's held-out samples (<output_dir>/heldout.jsonl) when synth wrote them

    def __post_init__(self) -> None:
        if self.buckets < 1:
            from longcurate.core.errors import ConfigError

            raise ConfigError(f"eval.nll.buckets must be >= 1, got {self.buckets}")


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
        from longcurate.core.errors import ConfigError

        if self.max_concurrency < 1 or self.max_retries < 0:
            raise ConfigError("eval.judge: max_concurrency must be >= 1 and max_retries >= 0")
        if self.max_requests is not None and self.max_requests < 1:
            raise ConfigError(f"eval.judge.max_requests must be >= 1 (or null), got {self.max_requests}")
        if self.max_consecutive_failures is not None and self.max_consecutive_failures < 1:
            raise ConfigError("eval.judge.max_consecutive_failures must be >= 1 (or null), "
                              f"got {self.max_consecutive_failures}")
        if not (self.timeout_s > 0 and 0 <= self.backoff_initial_s <= self.backoff_max_s):
            raise ConfigError("eval.judge: timeout_s must be > 0 and 0 <= backoff_initial_s <= backoff_max_s")


@dataclass
class LongBenchChatConfig:
    """LongBench-Chat as LongAlign released it (`eval/longbench_chat.py`); results go to
    `<eval.output_dir>/<label>/longbench-chat/`."""

    data_dir: str | None = None  # test_cases.json, few_shots.json, prompt_fs.txt
    max_new_tokens: int = 1024  # the released generation length
    # one generation length; eval.generate.max_new_tokens (--max-new-tokens) wins
    max_input_tokens: int | None = None  # prompt cut in the middle beyond this (default: what the window leaves)
    limit: int | None = None  # the first N cases (default: eval.limit)


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
    run: list[str] = field(default_factory=lambda: ["probes", "needle"])  # what run_stage does (+ nll, longbench)
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
