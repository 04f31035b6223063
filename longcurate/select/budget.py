"""Top-k subsets for each budget, and the same budgets for the baselines, as full sample records
(`budgets/gateau-1000.jsonl`, `budgets/random-1000.jsonl`, ...) that `train` reads directly.

Orders: `gateau` = the ranked order; `hmg-only` = hmg descending; `cam-only` = CAS descending (samples
without CAS last); `length` = longest prompt first; `random` = a seeded shuffle; GATEAU's baselines under
θ_B: `ifd` = Cherry's instruction-following difficulty PPL(y | x) / PPL(y) descending, samples with
IFD > 1 (the prompt makes the response harder: Cherry drops them as noise) after all others, nearest
to 1 first; `perplexity` = PPL(y | x) descending (the hardest responses first). Samples without a
figure go last. Ties break by id. Every method (`select.config.METHODS`) is also an `ablate` arm.
A budget larger than the data is capped with a warning (`budget_overflow: error` makes it an error),
and its files are named by the size they hold: budgets 1000, 3000 and 5000 of a 26-sample pool make
one file per method, `<method>-26.jsonl`, not three copies named by sizes they do not have.
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path
from typing import Any

from longcurate.core.errors import UserError
from longcurate.core.jsonl import write_jsonl
from longcurate.core.layout import budget_name, parse_budget
from longcurate.core.records import Sample

log = logging.getLogger("longcurate.select")

FIGURES = {"ifd": "ifd", "perplexity": "perplexity"}  # method -> the ranked record's figure it orders by


def requested_size(value: float, n: int) -> int:
    """A budget's sample count before capping: a size, or a fraction (< 1) of `n` samples."""
    return max(1, int(math.floor(value * n + 0.5))) if value < 1 else int(value)


def budget_size(value: float, n: int, overflow: str = "cap") -> int:
    size = requested_size(value, n)
    if size > n:
        if overflow == "error":
            raise UserError(f"budget {size} is larger than the {n} ranked samples (select.budget_overflow: error)")
        log.warning("budget %d is larger than the %d ranked samples; capped to %d", size, n, n)
        size = n
    return size


def budget_files(budgets: list[float], n: int, overflow: str = "cap") -> dict[str, int]:
    """{file label: size} for the budgets over `n` ranked samples. A budget larger than `n` is capped
    to `n` and labelled by that real size, so several such budgets make one file (one warning)."""
    files: dict[str, int] = {}
    capped: list[str] = []
    for spec in budgets:
        label, value = parse_budget(spec)
        size = requested_size(value, n)
        if size > n:
            if overflow == "error":
                raise UserError(f"budget {size} is larger than the {n} ranked samples (select.budget_overflow: error)")
            capped.append(label)
            label, size = str(n), n
        files.setdefault(label, size)
    if capped:
        log.warning("budget(s) %s: larger than the %d ranked samples; written once per method, with all %d, as "
                    "<method>-%d.jsonl", ", ".join(capped), n, n, n)
    return files


def method_orders(ranked: list[dict[str, Any]], lengths: dict[str, int], seed: int) -> dict[str, list[str]]:
    """Every method's full order of the ranked ids (best first)."""
    ids = [r["id"] for r in ranked]
    by_id = {r["id"]: r for r in ranked}
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    cam_order = sorted(ids, key=lambda i: (by_id[i].get("cas") is None, -(by_id[i].get("cas") or 0.0), i))
    return {
        "gateau": ids,
        "random": shuffled,
        "hmg-only": sorted(ids, key=lambda i: (-by_id[i]["hmg"], i)),
        "cam-only": cam_order,
        "length": sorted(ids, key=lambda i: (i not in lengths, -lengths.get(i, 0), i)),
        "ifd": sorted(ids, key=lambda i: ifd_key(by_id[i].get("ifd"), i)),
        "perplexity": sorted(ids, key=lambda i: (by_id[i].get("perplexity") is None,
                                                 -(by_id[i].get("perplexity") or 0.0), i)),
    }


def ifd_key(ifd: float | None, rid: str) -> tuple:
    """Cherry's order: IFD <= 1 descending, then IFD > 1 ascending (least noisy first), then none."""
    if ifd is None:
        return (2, 0.0, rid)
    return (0, -ifd, rid) if ifd <= 1.0 else (1, ifd, rid)


def require_figures(ranked: list[dict[str, Any]], methods: list[str]) -> None:
    """Raise UserError when a method orders by a figure (`FIGURES`) that some ranked record lacks."""
    for m in methods:
        lacking = [r["id"] for r in ranked if m in FIGURES and FIGURES[m] not in r]
        if lacking:
            raise UserError(f"budget method {m!r}: {len(lacking)} ranked sample(s) have no {FIGURES[m]} figure, "
                            f"e.g. {lacking[:3]} (HMG scores made before IFD existed: score HMG again)")


def token_counts(ranked: list[dict[str, Any]], samples: dict[str, Sample], scored: dict[str, int] | None,
                 required: bool) -> dict[str, int]:
    """Each ranked sample's token count: the scoring pass's (`scored`, from `n_tokens`), else the
    input's own `length`. A sample with neither has no count — never 0: when the `length` order is
    `required` that stops here, naming the samples."""
    scored = scored or {}
    counts = {r["id"]: scored[r["id"]] if r["id"] in scored else samples[r["id"]].length for r in ranked}
    absent = [i for i, n in counts.items() if n is None]
    if absent and required:
        raise UserError(f"budget method 'length': {len(absent)} sample(s) have no token count, e.g. {absent[:3]} "
                        "(the input has no `length` and the HMG scores hold no `n_tokens` for them: score HMG)")
    derived = sum(1 for r in ranked if r["id"] in scored and samples[r["id"]].length is None)
    if derived and required:
        log.info("length order: token counts from scoring (n_tokens) for %d sample(s) whose input has no length",
                 derived)
    return {i: n for i, n in counts.items() if n is not None}


def write_budgets(ranked: list[dict[str, Any]], samples: dict[str, Sample], out_dir: str | Path,
                  budgets: list[float], methods: list[str], *, lengths: dict[str, int] | None = None,
                  seed: int = 0, overflow: str = "cap") -> dict[str, Any]:
    """Write every method's file for every budget (`core.layout.budget_name`: `<method>-<budget>.jsonl`)
    into `out_dir`; returns {file: count}."""
    require_figures(ranked, methods)
    missing = [r["id"] for r in ranked if r["id"] not in samples]
    if missing:
        raise UserError(f"{len(missing)} ranked id(s) are not in the samples file, e.g. {missing[:5]}")
    orders = method_orders(ranked, token_counts(ranked, samples, lengths, "length" in methods), seed)
    out_dir = Path(out_dir)
    written: dict[str, int] = {}
    for label, size in budget_files(budgets, len(ranked), overflow).items():
        for m in methods:
            path = out_dir / budget_name(m, label)
            written[path.name] = write_jsonl(path, (samples[i].to_dict() for i in orders[m][:size]))
    return written
