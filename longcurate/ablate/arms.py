"""The long data of each arm, picked from one scored pool: each select method's order (select/budget.py
`method_orders`, so an arm at a sample budget holds what select's budget file of that method holds),
cut at the budget; `full` takes the whole pool, `short-only` nothing.

A budget in tokens fills each order until the next sample would pass the budget (a prefix of the
order; nothing is skipped to fit), counting a sample's tokens as training sees them: its length
(as select measured it) capped at `train.tokenize.max_length`, where the middle of longer samples
is cut. So `length`, which puts the longest samples first, cannot train on more tokens than `random`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from longcurate.core.completion import Step, describe_change
from longcurate.core.errors import SettingsChanged, UserError
from longcurate.core.jsonl import file_digest, write_jsonl
from longcurate.core.layout import parse_budget
from longcurate.core.reader import source_digest
from longcurate.core.records import Sample, is_count
from longcurate.select.budget import budget_size, method_orders, require_figures
from longcurate.select.shard import read_scores
from longcurate.select.stage import load_sample_map
from longcurate.select.steps import input_path

if TYPE_CHECKING:
    from longcurate.ablate.layout import AblationLayout
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.ablate")


@dataclass(frozen=True)
class Arm:
    """One arm's long data: its file (empty for `short-only`), how many samples and tokens it holds."""

    name: str
    path: Path
    samples: int
    tokens: int


def take_budget(order: list[str], tokens: dict[str, int], budget: float, unit: str) -> list[str]:
    """The prefix of `order` that the budget buys: a sample count (or a fraction of the order below 1),
    or a token total that the prefix never passes."""
    if unit == "samples":
        return order[:budget_size(parse_budget(budget)[1], len(order))]
    chosen, total = [], 0
    for i in order:
        if total + tokens[i] > budget:
            break
        chosen.append(i)
        total += tokens[i]
    return chosen


def arm_ids(ranked: list[dict[str, Any]], lengths: dict[str, int], tokens: dict[str, int], *, seed: int,
            budget: float, unit: str, arms: list[str]) -> dict[str, list[str]]:
    """The ids of each arm, in its method's order (`full`: the ranked order; `short-only`: none)."""
    require_figures(ranked, arms)
    orders = method_orders(ranked, lengths, seed)
    out = {}
    for arm in arms:
        if arm == "full":
            out[arm] = [r["id"] for r in ranked]
        elif arm == "short-only":
            out[arm] = []
        else:
            out[arm] = take_budget(orders[arm], tokens, budget, unit)
    return out


def pool_lengths(cfg: RunConfig, samples: dict[str, Sample]) -> dict[str, int]:
    """Each sample's token length as select's `length` order reads it: the HMG file's `n_tokens` (the
    prompt and response θ_B scored; a record whose count is unusable is left out, as rank quarantines
    it), else the sample's own `length` where the input has one."""
    hmg = cfg.layout().score("hmg")
    if hmg.exists():
        return {str(r["id"]): int(r["n_tokens"]) for r in read_scores(hmg) if is_count(r.get("n_tokens"))}
    return {i: s.length for i, s in samples.items() if s.length is not None}


def arm_step(path: Path, cfg: RunConfig, arm: str) -> Step:
    """An arm's file, policy `redo`: it is cheap and wholly decided by the pool and the budget, and the
    mixture made from it is rebuilt when its bytes change (a finished model then refuses to be
    retrained on other data). Settings: the arm, budget, unit, pool seed, token cap, input digests."""
    layout = cfg.layout()
    settings = {"arm": arm, "budget": cfg.ablate.budget, "unit": cfg.ablate.budget_unit, "seed": cfg.seed,
                "max_length": cfg.train.tokenize.max_length, "ranked": file_digest(layout.ranked),
                "hmg": file_digest(layout.score("hmg")), "samples": source_digest(input_path(cfg))}
    return Step(path, settings, on_change="redo", name=f"the {arm} arm")


def refuse_if_trained(step: Step, trained: bool) -> None:
    """An arm file made with other settings whose models are trained is not rewritten: the finished
    models would then belong to no arm file (train refuses to retrain them anyway)."""
    recorded = step.recorded_settings()
    if trained and recorded is not None and recorded != step.settings:
        raise SettingsChanged(f"{step.output}: {step.name} has trained runs, picked with other settings "
                              f"({describe_change(recorded, step.settings)}); use another ablate.output, or "
                              f"delete the arm's runs to retrain them")


def write_arms(cfg: RunConfig, ab: AblationLayout, trained: Callable[[str], bool] = lambda arm: False) -> dict[str, Arm]:
    """Each arm's file under `ab.arm_file(arm)` (rewritten only when the pool or budget changed, and
    never under finished runs: `trained(arm)`); `short-only`'s file is empty, so every arm trains
    through the same mixture step."""
    steps = {arm: arm_step(ab.arm_file(arm), cfg, arm) for arm in cfg.ablate.arms}
    for arm, step in steps.items():
        refuse_if_trained(step, trained(arm))
    if not all(s.is_complete() for s in steps.values()):
        ranked = read_scores(cfg.layout().ranked)
        if not ranked:
            raise UserError(f"{cfg.layout().ranked}: no ranked samples to pick arms from")
        samples = load_sample_map(cfg)
        lengths = pool_lengths(cfg, samples)
        cap = cfg.train.tokenize.max_length
        tokens = {i: min(n, cap) for i, n in lengths.items()}  # (every ranked id was scored: it has a count)
        ids = arm_ids(ranked, lengths, tokens, seed=cfg.seed, budget=cfg.ablate.budget,
                      unit=cfg.ablate.budget_unit, arms=list(steps))
        for arm, step in steps.items():
            if step.is_complete():
                continue
            if not ids[arm] and arm != "short-only":
                raise UserError(f"ablate: the {arm} arm is empty at budget {cfg.ablate.budget:g} "
                                f"{cfg.ablate.budget_unit} (raise ablate.budget)")
            step.unfinish()
            write_jsonl(step.output, (samples[i].to_dict() for i in ids[arm]))
            step.finish({"samples": len(ids[arm]), "tokens": sum(tokens[i] for i in ids[arm])})
    out = {}
    for arm, step in steps.items():
        stats = step.stats()
        out[arm] = Arm(arm, step.output, int(stats["samples"]), int(stats["tokens"]))
        log.info("arm %s: %d samples, %d tokens -> %s", arm, out[arm].samples, out[arm].tokens, step.output)
    return out


__all__ = ["Arm", "take_budget", "arm_ids", "pool_lengths", "write_arms"]
