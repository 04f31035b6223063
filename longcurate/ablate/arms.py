"""The long data of each arm, picked from one scored pool (`select.pool.scored_pool`): each select
method's order (select/budget.py `method_orders`, so an arm at a sample budget holds what select's
budget file of that method holds), cut at the budget; `full` takes the whole pool, `short-only` nothing.

- `random` is drawn `ablate.subsets` times: draw k shuffles the pool with `subset_seed(pool seed, k)`
  (draw 0 with the pool's own seed, select's `random` budget file); every draw is its own arm file.
- `oracle` keeps, in draw 0's random order, only the samples planted as `far` (`core.planted`: the
  answer's evidence lies beyond θ_A's view), so it is what a perfect long-dependency filter would pick.
- `control-wrong` is each random draw with its answers swapped between samples of one question type
  (`ablate.control`): the same contexts, questions and answer texts, wrongly paired.

A budget in tokens fills each order until the next sample would pass the budget (a prefix of the
order; nothing is skipped to fit), counting a sample's tokens as training sees them: its length (as
select measured it) capped at `train.tokenize.max_length`, where the middle of longer samples is cut.
`response_tokens` counts the response (trained-on) tokens θ_B scored instead, so every arm trains on
about as many loss-bearing tokens whatever its samples' context lengths.

Each arm file is a step of `core.runner` (policy `redo`: it is cheap and wholly decided by the pool and
the budget), except that an arm whose models are trained refuses new settings: the finished models
would belong to no arm file (train refuses to retrain them anyway).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from longcurate.ablate.config import BASELINE, CONTROL, ORACLE
from longcurate.core.ablation_layout import AblationLayout
from longcurate.core.errors import UserError
from longcurate.core.jsonl import write_jsonl
from longcurate.core.layout import parse_budget
from longcurate.core.runner import StepSpec, run_step
from longcurate.select.budget import budget_size, method_orders, require_figures
from longcurate.select.pool import ScoredPool, pool_digests, scored_pool

if TYPE_CHECKING:
    from longcurate.config import RunConfig
    from longcurate.core.records import Sample

log = logging.getLogger("longcurate.ablate")


@dataclass(frozen=True)
class Arm:
    """One arm's long data (one draw of a drawn arm): its file (empty for `short-only`) and what it holds."""

    name: str
    subset: int | None
    path: Path
    samples: int
    tokens: int
    response_tokens: int

    @property
    def key(self) -> str:
        """`gateau`, or `random/subset-2` for one draw of a drawn arm."""
        return self.name if self.subset is None else f"{self.name}/subset-{self.subset}"


def subset_seed(pool_seed: int, subset: int) -> int:
    """The seed of a random arm's draw: the pool's own seed for draw 0 (select's `random` budget
    file), else a 63-bit number derived from the pool seed and the draw index."""
    if subset == 0:
        return pool_seed
    digest = hashlib.sha256(f"longcurate-subset:{pool_seed}:{subset}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def take_budget(order: list[str], cost: dict[str, int], budget: float, unit: str) -> list[str]:
    """The prefix of `order` that the budget buys: a sample count (or a fraction of the order below 1),
    or a total of `cost` (tokens or response tokens) that the prefix never passes."""
    if unit == "samples":
        return order[:budget_size(parse_budget(budget)[1], len(order))]
    chosen, total = [], 0
    for i in order:
        if total + cost[i] > budget:
            break
        chosen.append(i)
        total += cost[i]
    return chosen


def planted_type(pool: ScoredPool, sample_id: str) -> str | None:
    planted = getattr(pool.samples[sample_id], "planted", None)
    return planted.get("type") if isinstance(planted, dict) else None


def arm_order(arm: str, subset: int | None, pool: ScoredPool, seed: int) -> list[str]:
    """The arm's ids, best first (`full`: the ranked order; `short-only`: none)."""
    if arm == "full":
        return [r["id"] for r in pool.ranked]
    if arm == "short-only":
        return []
    if arm in (BASELINE, CONTROL):
        return method_orders(pool.ranked, pool.lengths, subset_seed(seed, subset or 0))[BASELINE]
    if arm == ORACLE:
        far = [i for i in method_orders(pool.ranked, pool.lengths, seed)[BASELINE] if planted_type(pool, i) == "far"]
        if not far:
            raise UserError("ablate: the oracle arm needs samples planted as `far` (synth.planted.shares); "
                            "this pool has none")
        return far
    return method_orders(pool.ranked, pool.lengths, seed)[arm]


def costs(pool: ScoredPool, unit: str, max_length: int) -> dict[str, int]:
    """What one sample spends of a token budget: its tokens as training sees them (capped at
    `max_length`), or its response tokens (θ_B's count)."""
    if unit != "response_tokens":
        return {i: min(n, max_length) for i, n in pool.lengths.items()}
    lacking = [i for i, n in pool.response_tokens.items() if n is None]
    if lacking:
        raise UserError(f"ablate.budget_unit response_tokens: {len(lacking)} sample(s) have no response token "
                        f"count in the HMG scores, e.g. {lacking[:3]} (score the pool with `select score hmg`)")
    return {i: int(n) for i, n in pool.response_tokens.items() if n is not None}


def arm_ids(pool: ScoredPool, arm: str, subset: int | None, *, seed: int, budget: float, unit: str,
            max_length: int) -> list[str]:
    """The ids of one arm (one draw), in its order, cut at the budget (`full` and `short-only` uncut)."""
    require_figures(pool.ranked, [arm] if arm not in (ORACLE, CONTROL, "full", "short-only") else [])
    order = arm_order(arm, subset, pool, seed)
    if arm in ("full", "short-only"):
        return order
    return take_budget(order, costs(pool, unit, max_length), budget, unit)


def arm_spec(cfg: RunConfig, ab: AblationLayout, arm: str, subset: int | None, trained: bool) -> StepSpec:
    """An arm file's step. Settings: the arm and draw, budget, unit, pool seed, token cap and the pool's
    digests; `refuse` once the arm has trained models, else `redo`."""
    settings = {"arm": arm, "subset": subset, "subset_seed": None if subset is None else subset_seed(cfg.seed, subset),
                "budget": cfg.ablate.budget, "unit": cfg.ablate.budget_unit, "seed": cfg.seed,
                "max_length": cfg.train.tokenize.max_length, **pool_digests(cfg)}
    if arm == CONTROL:
        from longcurate.ablate.control import control_settings

        settings["control"] = control_settings(cfg)
    name = f"the {arm} arm" + ("" if subset is None else f" (subset {subset})")
    return StepSpec(name, ab.arm_file(arm, subset), settings, on_change="refuse" if trained else "redo",
                    quarantine=False)


def write_arm(cfg: RunConfig, pool: ScoredPool, arm: str, subset: int | None, output: Path) -> dict[str, Any]:
    """Write one arm file; its stats (samples, tokens, response tokens)."""
    ids = arm_ids(pool, arm, subset, seed=cfg.seed, budget=cfg.ablate.budget, unit=cfg.ablate.budget_unit,
                  max_length=cfg.train.tokenize.max_length)
    if not ids and arm != "short-only":
        raise UserError(f"ablate: the {arm} arm is empty at budget {cfg.ablate.budget:g} {cfg.ablate.budget_unit} "
                        "(raise ablate.budget)")
    records: Iterable[Sample] = (pool.samples[i] for i in ids)  # read back one at a time (`full`: the pool)
    extra: dict[str, Any] = {}
    if arm == CONTROL:
        from longcurate.ablate.control import swap_answers

        records, extra = swap_answers(cfg, list(records), pool, subset_seed(cfg.seed, subset or 0))
    write_jsonl(output, (s.to_dict() for s in records))
    cap = cfg.train.tokenize.max_length
    return {"samples": len(ids), "tokens": sum(min(pool.lengths[i], cap) for i in ids),
            "response_tokens": sum(pool.response_tokens[i] or 0 for i in ids), **extra}


def write_arms(cfg: RunConfig, ab: AblationLayout,
               trained: Callable[[str, int | None], bool] = lambda arm, subset: False) -> list[Arm]:
    """Each arm's file (each draw of a drawn arm), made or kept by the step runner; `short-only`'s file
    is empty, so every arm trains through the same mixture step. The pool is read once, and only when
    some arm file is to be written."""
    pool = functools.cache(lambda: scored_pool(cfg))
    out = []
    for arm in cfg.ablate.arms:
        for subset in cfg.ablate.draws(arm):
            spec = arm_spec(cfg, ab, arm, subset, trained(arm, subset))
            stats = run_step(spec, lambda run, a=arm, k=subset: write_arm(cfg, pool(), a, k, run.output))
            out.append(Arm(arm, subset, spec.output, int(stats["samples"]), int(stats["tokens"]),
                           int(stats.get("response_tokens", 0))))
            log.info("arm %s: %d samples, %d tokens (%d response) -> %s", out[-1].key, out[-1].samples,
                     out[-1].tokens, out[-1].response_tokens, spec.output)
    return out


__all__ = ["Arm", "subset_seed", "take_budget", "arm_order", "arm_ids", "costs", "write_arms"]
