"""The ablation's report: `report.json` (every figure, machine-readable) and `report.md` (tables and
plain sentences that say no more than the intervals and the pass criteria support). Figures are rounded
to 6 decimals and paths are relative to the ablation folder, so the same outcomes always give the same
bytes.

What it concludes follows the criteria fixed in the config (`ablate.criteria`): an arm differs from
`random` when its Holm-adjusted p-value is below `alpha`. The positive control (`control-wrong`) comes
first: unless it is detectably worse than random, the setup cannot detect data quality and the report
draws no selection conclusion from the run (the figures stay, as description).
"""

from __future__ import annotations

import math
from typing import Any

from longcurate.ablate.analysis import MeasureStats
from longcurate.ablate.outcomes import BETTER, UNITS
from longcurate.ablate.report_tables import (component_table, fmt, measure_table, model_table, p_text, position_table,
                                             tokens_table, type_table)

QUESTION = "Does GATEAU selection beat random selection at the same budget?"
STATISTICS = (
    "**Statistics.** Each arm's outcomes are a table of subsets x training seeds x items (a selection "
    "method has one subset, `random` and the control one per draw). Every interval is a 95% *cluster "
    "bootstrap* interval that resamples subsets, seeds and items together (crossed; G − 1 of a level's G "
    "units per draw, Efron's small-sample correction), so it holds the subset-to-subset and seed-to-seed "
    "variation as well as the items'. Differences are paired against `{baseline}` over the same items and "
    "seeds (the control also by subset); p-values are two-sided bootstrap p-values, Holm-adjusted over "
    "the {family} arms compared (family-wise α = {alpha}). *Beats random subsets*: the share of `{baseline}`'s "
    "draws (each averaged over its seeds) that a one-subset arm beats.")


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


def differs(c: dict[str, Any] | None, alpha: float) -> bool:
    return bool(c) and c.get("p_holm") is not None and c["p_holm"] < alpha


def direction(c: dict[str, Any], better: str) -> str:
    lower = c["difference"]["mean"] < 0
    return f"{'lower' if lower else 'higher'} ({'better' if lower == (better == 'lower') else 'worse'})"


def verdict(arm: str, baseline: str, better: str, c: dict[str, Any], alpha: float) -> str:
    """One sentence on arm vs baseline that claims a difference only when the Holm-adjusted p-value is
    below `alpha`."""
    d = c["difference"]
    if d["n"] == 0 or d["low"] is None:
        return f"- `{arm}`: no comparison (no common items)."
    text = f"`{arm}` − `{baseline}` = {fmt(d)} (Holm p {p_text(c.get('p_holm'))})"
    if differs(c, alpha):
        return f"- {text}: `{arm}` scores {direction(c, better)} than `{baseline}` on these items."
    return (f"- {text}: no difference detected at α = {alpha:g}; any true difference from {d['low']:.3f} to "
            f"{d['high']:.3f} fits these runs.")


def quality_check(setup: dict[str, Any], m: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether the positive control shows that this setup detects data quality, and what to say."""
    control, baseline, alpha = setup.get("control"), setup["baseline"], setup["criteria"]["alpha"]
    rows = m["rows"]
    if not control or control not in rows or not rows[control]["vs_baseline"]:
        return False, ["**No positive control in this run** (`control-wrong` not among the arms): nothing shows "
                       "that the setup can detect any data-quality difference, so a null result cannot be read "
                       "and no selection conclusion is drawn."]
    c = rows[control]["vs_baseline"]
    worse = differs(c, alpha) and direction(c, m["better"]).endswith("(worse)")
    lines = [verdict(control, baseline, m["better"], c, alpha)]
    if worse:
        lines.append(f"**The setup detects data quality:** training on wrongly paired answers is detectably worse "
                     f"than `{baseline}`, so the selection comparisons below can be read.")
    else:
        lines.append(f"**The setup cannot detect data quality:** the control (the `{baseline}` samples with their "
                     "answers swapped) is not detectably worse than random, so this run draws **no selection "
                     "conclusion**; the comparisons below are description only.")
    return worse, lines


def measure_section(name: str, m: dict[str, Any], setup: dict[str, Any], primary: bool) -> list[str]:
    baseline, alpha = setup["baseline"], setup["criteria"]["alpha"]
    readable, control_lines = quality_check(setup, m)
    lines = [f"## {name}: {m['what']} ({m['better']} is better)", "",
             f"{m['items']} items ({', '.join(f'{k}: {v}' for k, v in m['items_by_source'].items())})"
             + (f"; {m['dropped_items']} items left out because some model has no value for them"
                if m["dropped_items"] else "") + ".", "",
             "### The positive control", "", *control_lines, ""]
    lines += measure_table(m, baseline) + [""]
    rows = m["rows"]
    compared = [a for a, r in rows.items() if r["vs_baseline"] and r["vs_baseline"].get("p_holm") is not None
                and a != setup.get("control")]
    heading = "What the intervals show" + ("" if readable and primary else " (description only: no conclusion)")
    lines += [f"{heading}:", ""] + [verdict(a, baseline, m["better"], rows[a]["vs_baseline"], alpha) for a in compared]
    lines += [f"- `{a}` (a reference row, outside the adjusted family) − `{baseline}` = "
              f"{fmt(r['vs_baseline']['difference'])} (unadjusted p {p_text(r['vs_baseline']['p_value'])})."
              for a, r in rows.items() if r["vs_baseline"] and r["vs_baseline"].get("p_holm") is None] + [""]
    lines += ["### Variance components and the smallest detectable difference", ""] + component_table(m, setup) + [""]
    lines += [f"### By question type (each arm's mean, then `arm` − `{baseline}`; 95% CI, unadjusted, descriptive)", ""]
    lines += type_table(m, baseline) + [""]
    lines += ["### By evidence position (0 = start of the context; 95% CI, unadjusted, descriptive)", ""]
    lines += position_table(m, baseline) + [""]
    lines += ["### Every model's mean", ""] + model_table(m) + [""]
    return lines


def contamination_line(arms: dict[str, Any]) -> str:
    """How many eval items each arm's training mixtures contain (eval's exact-match check), per model."""
    parts = []
    for arm, a in arms.items():
        counts = sorted({v for v in (a.get("contaminated_items_by_model") or {}).values() if v is not None})
        parts.append(f"`{arm}` {'/'.join(map(str, counts)) if counts else 'not checked'}")
    return ("**Contamination:** eval items whose answer or key occurs in the arm's training mixture "
            "(case- and whitespace-normalised exact match; distinct counts over its models): " + ", ".join(parts) + ".")


def coverage_lines(arms: dict[str, Any], s: dict[str, Any]) -> list[str]:
    """Where the fixed number of optimiser steps did not train on an arm's file as it is: an arm with
    more long samples than its share of the steps' samples saw only some of them, one with fewer saw
    some twice, so what it trained on differs from what its budget bought."""
    out = []
    for arm, a in arms.items():
        seen = (a.get("trained") or {}).get("long_samples")
        if seen is None or not a["samples"] or abs(seen - a["samples"]) < 0.5:
            continue
        how = "only part of its samples" if seen < a["samples"] else "some of its samples more than once"
        out.append(f"- `{arm}`: {seen:.0f} long samples seen for {a['samples']:.0f} in its file ({how}).")
    if not out:
        return []
    return [f"Every arm trains {s['max_steps']} optimiser steps of {s['global_batch']} samples, so an arm whose "
            "file holds more or fewer long samples than fit in them trains on other totals than its budget "
            "bought (see `response tokens seen`):", ""] + out + [""]


def setup_lines(s: dict[str, Any], p: dict[str, Any], family: int) -> list[str]:
    g = s["gateau"]
    window = f"θ_A window {g['window']} tokens" if g.get("window") else f"θ_A `{g.get('model_a')}`"
    draws = f"{s['subsets']} draw{'s' if s['subsets'] != 1 else ''}"
    return [f"One pool of {s['pool_samples']} scored long samples; arms {', '.join(f'`{a}`' for a in s['arms'])}; "
            f"budget {s['budget']:g} {s['budget_unit'].replace('_', ' ')}; `{s['baseline']}` (and the control) in "
            f"{draws}; seeds {s['seeds']}; every run: base model `{s['base_model']}`, {s['max_steps']} optimiser "
            f"steps of {s['global_batch']} samples, the same "
            f"{s['short_samples'] if s['short_samples'] is not None else 'all'} short samples per seed.", "",
            f"The `gateau` arm ranks with α = {g['alpha']}, normalisation `{g['normalize']}`, HMG scale "
            f"`{g['hmg_scale']}`, {window}.", "",
            f"**Primary measure: `{p['measure']}`, {p['what']}; {p['better']} is better.**", "",
            STATISTICS.format(baseline=s["baseline"], family=family, alpha=s["criteria"]["alpha"]), ""]


def markdown(data: dict[str, Any], plots: dict[str, str]) -> str:
    s, p = data["setup"], data["primary"]
    first = data["measures"][p["measure"]]
    family = sum(1 for r in first["rows"].values() if r["vs_baseline"] and r["vs_baseline"].get("p_holm") is not None)
    lines = [f"# Selection ablation: {data['question']}", ""] + setup_lines(s, p, family)
    lines += [contamination_line(data["arms"]), ""]
    for name, m in data["measures"].items():
        lines += measure_section(name, m, s, primary=name == p["measure"])
    lines += ["## Tokens trained", "",
              "`file`: the arm's long samples, mean over its draws (all tokens capped at the tokenizer's max_length; "
              "response tokens as θ_B scored them). `seen`: what the optimiser saw in its steps, mean over the arm's "
              "models (repeats counted, padding not); context = long tokens − response tokens.", ""]
    lines += tokens_table(data["arms"]) + [""] + coverage_lines(data["arms"], s)
    if plots:
        lines += ["## Plots", ""] + [f"![{k}]({v})" for k, v in plots.items()] + [""]
    return "\n".join(lines)


__all__ = ["report_data", "markdown", "verdict", "quality_check", "clean", "QUESTION"]
