"""Configuration of the eval stage (defaults live here)."""

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
    output_dir: str | None = None  # default: <output_dir>/eval/longbench
    limit: int | None = None  # per task


@dataclass
class EvalConfig:
    longbench: LongBenchConfig = field(default_factory=LongBenchConfig)
    limit: int | None = None
