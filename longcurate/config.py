"""The whole pipeline's configuration: shared keys plus one section per stage, and the run's layout.

This module (with `cli.py` and `pipeline.py`) is the composition root: it is the one place that knows
every stage's config section. Neither `core` nor any stage imports it: each stage states what it reads
of the run as a small Protocol in its own `config.py` (`SynthRun`, `SelectRun`, `TrainRun`), which
`RunConfig` satisfies. Each section checks its own values when built; `RunConfig` adds the rules that
span sections, so a resolved config is a valid one before any step starts.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import ClassVar

from longcurate.ablate.config import AblateConfig
from longcurate.core.cli import resolve
from longcurate.core.holdout import Corpora, HoldoutConfig
from longcurate.core.layout import RunLayout
from longcurate.core.rules import at_least, each_of, require
from longcurate.eval.config import EvalConfig
from longcurate.select.config import SelectConfig
from longcurate.synth.config import SynthConfig
from longcurate.train.config import TrainConfig

STAGES = ("synth", "select", "train", "eval")  # `longcurate run` runs them in this order


@dataclass
class RunConfig:
    # The run folder. null: runs/default, except that what goes with an output the config places
    # elsewhere (`--output`) goes beside it (core.layout.beside_placed).
    output_dir: str | None = None
    seed: int = 0
    # The target model: its tokenizer measures lengths in synth, it is θ_B in select, the base in train.
    model: str = "smollm2-135m-instruct"
    allow_download: bool = False  # hub downloads off unless asked for
    trust_remote_code: bool = False
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    # The train / eval split of every corpus that both sides read (by a hash of the document id):
    # synth builds training samples from the train part, probes / needles / held-out samples from the
    # eval part, so evaluation text never shares a document with training text.
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ablate: AblateConfig = field(default_factory=AblateConfig)  # `longcurate ablate` only

    # Keys whose relative values, in a config file, name files beside that file (`core.cli.resolve_input_paths`).
    INPUT_PATHS: ClassVar[tuple[str, ...]] = (
        "model", "synth.corpus.path", "select.input", "select.model", "select.model_a", "train.mix.long",
        "train.mix.short", "train.tokenize.input", "train.dataset", "train.init_from", "train.deepspeed",
        "train.fsdp_config", "eval.corpus", "eval.checkpoint", "eval.longbench.data_dir",
        "eval.longbench.prompt_file", "eval.longbench.maxlen_file", "eval.probes.pieces_dir",
        "eval.longbench_chat.data_dir")

    def __post_init__(self) -> None:
        at_least("seed", self.seed, 0)
        require(bool(self.model), "model", "must name a model (an alias, a folder, a Hub id or a .gguf file)")
        each_of("stages", self.stages, STAGES, empty=True)
        require(self.synth.heldout_samples == 0 or self.holdout.fraction > 0, "synth.heldout_samples",
                "needs an eval part of the corpus: set holdout.fraction > 0")

    def corpora(self) -> Corpora:
        """The corpora synth and eval read (each side asks whether it must keep to its part)."""
        return Corpora(synth=self.synth.corpus.path, eval=self.eval.corpus)

    def layout(self) -> RunLayout:
        """Where every file of this run lives: `output_dir`, with the paths the config places elsewhere."""
        return RunLayout.under(
            self.output_dir,
            budgets=self.select.budgets,
            samples=self.synth.output,
            heldout=self.synth.heldout_output,
            scores_dir=self.select.scores_dir,
            budgets_dir=self.select.budget_dir,
            mixture=self.train.mix.output,
            tokenized=self.train.dataset or self.train.tokenize.output,
            checkpoints=self.train.checkpoints,
            model=self.train.output,
            eval_dir=self.eval.output_dir,
            probes=self.eval.probes.output,
            needle=self.eval.needle.output,
            openai_cache=self.synth.openai.cache_dir,
            audit_dir=self.select.audit.output_dir,
        )


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """The command's RunConfig: YAML file, then `key=value` overrides, then flags."""
    args.config_class = RunConfig
    return resolve(args, RunConfig)


__all__ = ["RunConfig", "STAGES", "resolve_config"]
