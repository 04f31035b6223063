"""The ablation's report: `report.json` (every figure, machine-readable) and `report.md` (tables and
plain sentences that say no more than the intervals support). Figures are rounded to 6 decimals and
paths are relative to the ablation folder, so the same outcomes always give the same bytes.
"""

from __future__ import annotations

import math
from typing import Any

from longcurate.ablate.analysis import MeasureStats
from longcurate.ablate.outcomes import BETTER, UNITS
from longcurate.core.stats import Estimate

QUESTION = "Does GATEAU selection beat random selection at the same budget?"


def clean(obj: Any) -> Any:
    """JSON-safe and stable: floats rounded to 6 decimals, NaN / inf as null, keys as strings."""
    if isinstance(obj, float):
        return round(obj, 6) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def report_data(setup: dict[str, Any], arms: dict[str, Any], measures: dict[str, MeasureStats]) -> dict[str, Any]:
    primary = next(iter(measures))
    return clean({
        "question": QUESTION,
        "primary": {"measure": primary, "better": BETTER[primary], "what": UNITS[primary]},
        "setup": setup,
        "arms": arms,
        "measures": {m: {"better": BETTER[m], "what": UNITS[m], **s.to_dict()} for m, s in measures.items()},
    })


def fmt(e: dict[str, Any], digits: int = 3) -> str:
    """`mean [low, high]`; one item has no interval, and says so."""
    if e["n"] == 1:
        return f"{e['mean']:.{digits}f} (1 item)"
    return Estimate(**{k: (math.nan if v is None else v) for k, v in e.items()}).format(digits=digits)


def p_text(p: float | None) -> str:
    return "n/a" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def verdict(arm: str, baseline: str, measure: str, comparison: dict[str, Any]) -> str:
    """One sentence on arm vs baseline that claims a difference only when its interval excludes 0."""
    d = comparison["difference"]
    if d["n"] == 0 or d["low"] is None:
        return f"- `{arm}`: no comparison (no common items)."
    p = p_text(comparison["p_value"])
    ci = f"{fmt(d)} (p {p if p.startswith('<') else '= ' + p})"
    if d["low"] > 0 or d["high"] < 0:
        lower = d["high"] < 0
        good = lower == (BETTER[measure] == "lower")
        return (f"- `{arm}` − `{baseline}` = {ci}: the interval excludes 0, so on these items "
                f"`{arm}` scores {'lower' if lower else 'higher'} ({'better' if good else 'worse'}) than `{baseline}`.")
    return (f"- `{arm}` − `{baseline}` = {ci}: the interval includes 0, so these items do not show a difference; "
            f"any true difference from {d['low']:.3f} to {d['high']:.3f} is consistent with them.")


def measure_table(name: str, m: dict[str, Any], baseline: str) -> list[str]:
    sources = sorted({s for r in m["rows"].values() for s in r["by_source"]})
    head = ["arm", f"mean [95% CI] ({m['better']} is better)", f"− {baseline} [95% CI]", "p",
            "per-seed means", "seed sd", *[f"{s} [95% CI]" for s in sources]]
    lines = [f"### {name}: {m['what']}", "",
             f"{m['items']} items ({', '.join(f'{k}: {v}' for k, v in m['items_by_source'].items())})"
             + (f"; {m['dropped_items']} items left out because some model has no value for them"
                if m["dropped_items"] else "") + ".", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, r in m["rows"].items():
        vs = r["vs_baseline"]
        seeds = ", ".join(f"{v:.3f}" for v in r["seed_means"].values())
        lines.append("| " + " | ".join([
            f"`{arm}`", fmt(r["mean"]), fmt(vs["difference"]) if vs else "(baseline)",
            p_text(vs["p_value"]) if vs else "", seeds, "" if r["seed_std"] is None else f"{r['seed_std']:.3f}",
            *[fmt(r["by_source"][s]) if s in r["by_source"] else "" for s in sources]]) + " |")
    return lines + [""]


def position_table(m: dict[str, Any], baseline: str) -> list[str]:
    """Each arm's mean per position bucket, then its paired difference against the baseline there."""
    buckets = m["position_buckets"]
    head = ["arm", *[f"{b['low']:.2f}–{b['high']:.2f} (n={b['items']})" for b in buckets]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, r in m["rows"].items():
        lines.append("| " + " | ".join([f"`{arm}`", *[fmt(e) for e in r["by_position"]]]) + " |")
    for arm, r in m["rows"].items():
        if r["vs_baseline"]:
            lines.append("| " + " | ".join([f"`{arm}` − `{baseline}`", *[fmt(c["difference"]) if c else "n/a"
                                                                        for c in r["vs_baseline_by_position"]]]) + " |")
    return lines + [""]


def tokens_table(arms: dict[str, Any]) -> list[str]:
    head = ["arm", "long samples (file)", "long tokens (file)", "long samples seen", "long tokens seen",
            "short tokens seen", "all tokens seen"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, a in arms.items():
        t = a.get("trained") or {}
        lines.append("| " + " | ".join([f"`{arm}`", str(a["samples"]), f"{a['tokens']:,}",
                                        *[f"{t[k]:,.0f}" if k in t else "" for k in
                                          ("long_samples", "long_tokens", "short_tokens", "tokens")]]) + " |")
    return lines + [""]


def contamination_line(arms: dict[str, Any]) -> str:
    """How many eval items each arm's training mixture contains (eval's exact-match check), per seed."""
    parts = []
    for arm, a in arms.items():
        found = a.get("contaminated_items_by_seed") or {}
        counts = sorted({v for v in found.values() if v is not None})
        parts.append(f"`{arm}` {'/'.join(map(str, counts)) if counts else 'not checked'}")
    return ("**Contamination:** eval items whose answer or key occurs in the arm's training mixture "
            "(case- and whitespace-normalised exact match; per seed, distinct counts): " + ", ".join(parts) + ".")


def markdown(data: dict[str, Any], plots: dict[str, str]) -> str:
    s, p = data["setup"], data["primary"]
    baseline = s["baseline"]
    lines = [f"# Selection ablation: {data['question']}", "",
             f"One pool of {s['pool_samples']} scored long samples; arms {', '.join(f'`{a}`' for a in s['arms'])}; "
             f"budget {s['budget']:g} {s['budget_unit']}; seeds {s['seeds']}; every run: base model "
             f"`{s['base_model']}`, {s['max_steps']} optimiser steps of {s['global_batch']} samples, the same "
             f"{s['short_samples'] if s['short_samples'] is not None else 'all'} short samples per seed.", "",
             f"**Primary measure: `{p['measure']}`, {p['what']}; {p['better']} is better.** Intervals are 95% "
             "percentile-bootstrap intervals over items, with each item's value averaged over seeds; they do "
             "not include the seed-to-seed variation, which the `seed sd` column shows. Differences are "
             f"paired over the same items against `{baseline}`; p-values (sign-flip permutation test) are not "
             "adjusted for the number of comparisons.", ""]
    lines += [contamination_line(data["arms"]), ""]
    for name, m in data["measures"].items():
        lines += measure_table(name, m, baseline)
        lines += [f"What the `{name}` intervals show:", ""]
        lines += [verdict(arm, baseline, name, r["vs_baseline"]) for arm, r in m["rows"].items() if r["vs_baseline"]]
        lines += ["", f"Position curve (`{name}` by where the evidence sits, 0 = start of the context):", ""]
        lines += position_table(m, baseline)
    lines += ["## Tokens trained", "",
              "`file`: the arm's long samples (tokens capped at the tokenizer's max_length). `seen`: what the "
              "optimiser saw in its steps, mean over seeds (tokens of the samples in each step's global batch, "
              "repeats counted, padding not).", ""]
    lines += tokens_table(data["arms"])
    if plots:
        lines += ["## Plots", ""] + [f"![{k}]({v})" for k, v in plots.items()] + [""]
    return "\n".join(lines)


__all__ = ["report_data", "markdown", "verdict", "clean", "QUESTION"]
