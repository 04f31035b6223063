"""The whole pipeline's configuration: shared keys plus one section per stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from longcurate.eval.config import EvalConfig
from longcurate.select.config import SelectConfig
from longcurate.synth.config import SynthConfig
from longcurate.train.config import TrainConfig


@dataclass
class RunConfig:
    output_dir: str = "runs/default"
    seed: int = 0
    # The target model: its tokenizer measures lengths in synth, it is θ_B in select, the base in train.
    model: str = "smollm2-135m-instruct"
    allow_download: bool = False  # hub downloads off unless asked for
    trust_remote_code: bool = False
    stages: list[str] = field(default_factory=lambda: ["synth", "select", "train", "eval"])
    synth: SynthConfig = field(default_factory=SynthConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def path(self, explicit: str | None, default_name: str) -> Path:
        """An explicit path as given, else `default_name` inside output_dir."""
        return Path(explicit) if explicit else Path(self.output_dir) / default_name
