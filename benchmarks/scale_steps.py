"""The steps `scale_bench.py` measures, each as its public function runs it on a synthetic input:
`make(folder, size)` writes the input (not measured), `run(folder, size)` is what the measured child
process does. Every run writes into `<folder>/out`, which the bench empties before each run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import scale_data as data

CHUNK = 64  # samples in the first scoring chunk (select.chunk_size's default)


def config(folder: Path, **select):
    from longcurate.config import RunConfig
    from longcurate.core.config import build

    return build(RunConfig, {"output_dir": str(folder / "out"), "select": {
        "input": str(folder / "samples.jsonl"), "scores_dir": str(folder / "scores"), **select}})


def run_rank(folder: Path, size: int) -> None:
    from longcurate.select.stage import run_rank as rank

    rank(config(folder), folder / "hmg.jsonl", folder / "cam.jsonl", folder / "out" / "ranked.jsonl")


def run_budget(folder: Path, size: int) -> None:
    from longcurate.select.stage import run_budget as budget

    budget(config(folder, budgets=[1000, 3000, 5000]), ranked=folder / "ranked.jsonl")


def run_diagnose(folder: Path, size: int) -> None:
    from longcurate.select.stage import run_diagnose as diagnose

    diagnose(config(folder, output=str(folder / "out" / "diagnostics.json")), folder / "hmg.jsonl", folder / "cam.jsonl")


def run_merge(folder: Path, size: int) -> None:
    from longcurate.select.scoring import merge_scores
    from longcurate.select.steps import ScoreSteps

    cfg = config(folder)
    merge_scores(cfg, ScoreSteps.of(cfg, "cam"), 2, again=True)


def run_score_input(folder: Path, size: int) -> None:
    """`select score both` up to its first forward: the input read once (this shard's samples
    spilled), every sample tokenized to plan the chunks and find the rejects, and the first chunk
    (the longest samples) tokenized again for the engine; the model is not loaded."""
    from longcurate.core.jsonl import Rejects
    from longcurate.core.models import SMOLLM2_ALIAS, load_tokenizer
    from longcurate.select.inputs import PromptBuilder
    from longcurate.select.sample_index import InputIndex
    from longcurate.select.shard import ShardSpec, length_order
    from longcurate.select.shard_plan import ShardPlan

    out = folder / "out"
    builder = PromptBuilder(load_tokenizer(SMOLLM2_ALIAS), prompt_format="chat", max_length=1 << 17, max_segments=32)
    spec = ShardSpec()
    index = InputIndex.read(folder / "long.jsonl", None, owns=spec.owns, beside=out / "part.jsonl")
    with Rejects(out / "hmg.rejected.jsonl") as hmg, Rejects(out / "cam.rejected.jsonl") as cam:
        plan = ShardPlan.make(index, builder, spec, {"hmg": None, "cam": None}, {"hmg": hmg, "cam": cam})
    units = plan.units["hmg"]
    first = plan.prepare([units[i] for i in length_order([u.length for u in units])[:CHUNK]])
    print(f"tokens={sum(u.length for u in units)} samples={len(units)} first_chunk_tokens={sum(len(p.input_ids) for p in first)}")
    index.close()


def run_pool(folder: Path, size: int) -> None:
    """An ablation's read of the scored pool (`select.pool.scored_pool`), then every sample read back
    once, as the `full` arm's file is written."""
    from longcurate.select.pool import scored_pool

    pool = scored_pool(config(folder, scores_dir=str(folder)))
    assert sum(len(pool.samples[i].context) > 0 for i in pool.samples) == size


def run_mix(folder: Path, size: int) -> None:
    from longcurate.train.mix import build_mixture

    build_mixture([str(folder / "budget.jsonl")], str(folder / "sharegpt.jsonl"), folder / "out" / "mixture.jsonl",
                  short_size=1000, seed=0, progress=False)


def run_tokenize(folder: Path, size: int) -> None:
    from longcurate.core.models import SMOLLM2_ALIAS, load_tokenizer
    from longcurate.train.tokenize import tokenize_mixture

    stats = tokenize_mixture(folder / "mixture.jsonl", folder / "out" / "tokenized", load_tokenizer(SMOLLM2_ALIAS),
                             template="chat", max_length=8192, progress=False)
    print(f"tokens={stats['total_tokens']} rows={stats['kept']}")


def run_json(folder: Path, size: int) -> None:
    from longcurate.core.reader import read_rows

    print(f"rows={sum(1 for _ in read_rows(folder / 'records.json'))}")


@dataclass(frozen=True)
class Step:
    """A measured step: what its size counts, how its input is made, what the child runs."""

    unit: str  # rows | tokens
    make: Callable[[Path, int], None]
    run: Callable[[Path, int], None]
    imports: tuple[str, ...]  # what the child imports before the step (its start-up, measured apart)


def _make_rank(folder: Path, n: int) -> None:
    data.scores(folder, n)


def _make_budget(folder: Path, n: int) -> None:
    data.samples(folder, n)
    data.ranked(folder, n)


def _make_diagnose(folder: Path, n: int) -> None:
    data.samples(folder, n)
    data.scores(folder, n)


def _make_merge(folder: Path, n: int) -> None:
    data.samples(folder, n)
    data.cam_parts(folder, n, config)


def _make_pool(folder: Path, n: int) -> None:
    data.samples(folder, n)
    data.ranked(folder, n)
    data.scores(folder, n)


def _make_mix(folder: Path, n: int) -> None:
    data.samples(folder, 1000, name="budget.jsonl")  # the budget file: 1,000 long samples
    data.sharegpt(folder, n)


STEPS: dict[str, Step] = {
    "rank": Step("rows", _make_rank, run_rank, ("longcurate.select.stage",)),
    "budget": Step("rows", _make_budget, run_budget, ("longcurate.select.stage",)),
    "diagnose": Step("rows", _make_diagnose, run_diagnose, ("longcurate.select.stage",)),
    "merge": Step("rows", _make_merge, run_merge, ("longcurate.select.scoring",)),
    "score-input": Step("tokens", lambda f, n: data.long_samples(f, n) and None, run_score_input,
                        ("longcurate.select.shard_plan", "longcurate.core.models", "transformers")),
    "pool": Step("rows", _make_pool, run_pool, ("longcurate.select.pool", "longcurate.select.stage")),
    "mix": Step("rows", _make_mix, run_mix, ("longcurate.train.mix",)),
    "tokenize": Step("tokens", lambda f, n: data.mixture(f, n) and None, run_tokenize,
                     ("longcurate.train.tokenize", "longcurate.core.models", "transformers", "datasets")),
    "json-array": Step("rows", lambda f, n: data.json_array(f, n) and None, run_json, ("longcurate.core.reader",)),
}
