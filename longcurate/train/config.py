"""Configuration of the train stage: mixture, tokenization, training (defaults live here)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MixConfig:
    long: list[str] = field(default_factory=list)  # budget files; default: the select stage's top budget
    short: str | None = None  # ShareGPT-format JSONL (messages or conversations); None: no short data
    short_size: int | None = None  # number of short samples to take ...
    short_ratio: float | None = None  # ... or short : long ratio (e.g. 10.0 = ten short per long)
    output: str | None = None  # default: <output_dir>/mixture/mixture.jsonl
    limit: int | None = None


@dataclass
class TokenizeConfig:
    input: str | None = None  # default: the mixture JSONL
    output: str | None = None  # default: <output_dir>/mixture/tokenized (a datasets Arrow folder)
    template: str = "chat"  # chat (the tokenizer's chat template; FILM [INST] when it has none) | film
    max_length: int = 8192
    overlong: str = "truncate"  # truncate (middle of the context, instruction kept) | skip
    num_proc: int = 1
    limit: int | None = None


@dataclass
class TrainConfig:
    mix: MixConfig = field(default_factory=MixConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    limit: int | None = None
