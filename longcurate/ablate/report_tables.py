"""The Markdown tables of the ablation report, from report.json's data (`report.py` assembles them)."""

from __future__ import annotations

import math
from typing import Any

from longcurate.core.stats import Estimate


def fmt(e: dict[str, Any] | None, digits: int = 3) -> str:
    """`mean [low, high]`; one item has no interval, and says so."""
    if not e or e["n"] == 0 or e["mean"] is None:
        return "n/a"
    if e["n"] == 1:
        return f"{e['mean']:.{digits}f} (1 item)"
    return Estimate(**{k: (math.nan if v is None else v) for k, v in e.items()}).format(digits=digits)


def p_text(p: float | None) -> str:
    return "n/a" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def sd_text(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def measure_table(m: dict[str, Any], baseline: str) -> list[str]:
    sources = sorted({s for r in m["rows"].values() for s in r["by_source"]})
    head = ["arm", "subsets x seeds", f"mean [95% CI]", f"− {baseline} [95% CI]", "p (Holm)", "p",
            "beats random subsets", "seed sd", "subset sd", *[f"{s} [95% CI]" for s in sources]]
    rows = []
    for arm, r in m["rows"].items():
        vs = r["vs_baseline"]
        beats = vs.get("beats_random_subsets_percent") if vs else None
        rows.append([f"`{arm}`", f"{r['subsets']} x {r['seeds']}", fmt(r["mean"]),
                     fmt(vs["difference"]) if vs else "(baseline)", p_text(vs.get("p_holm")) if vs else "",
                     p_text(vs["p_value"]) if vs else "", "" if beats is None else f"{beats:.0f}%",
                     sd_text(r["seed_sd"]), sd_text(r["subset_sd"]),
                     *[fmt(r["by_source"].get(s)) for s in sources]])
    return table(head, rows)


def component_table(m: dict[str, Any], setup: dict[str, Any]) -> list[str]:
    """The variance components, each one's share of Var(one-subset arm − random), and the MDD."""
    c, shares = m["variance_components"], m["variance_shares"]
    total = sum(shares.values())
    what = {"items": "items (model x item interaction, per item)", "seeds": "training seeds (per model mean)",
            "subsets": f"`{setup['baseline']}` subsets (per subset mean)"}
    rows = [[what[k], "n/a" if c[k] is None else f"{c[k]:.6f}", str(c["df"][k]),
             f"{100 * shares[k] / total:.0f}%" if total > 0 else "n/a"] for k in ("items", "seeds", "subsets")]
    lines = table(["component", "variance", "df", "share of Var(arm − random)"], rows)
    crit = setup["criteria"]
    lines += ["", f"Smallest difference this run detects with {crit['power']:.0%} power at a two-sided "
              f"{crit['alpha']:g} level (a one-subset arm against `{setup['baseline']}`, normal approximation, "
              f"from the components above): **{m['min_detectable_difference']:.3f}**."]
    if total > 0:
        biggest = max(shares, key=lambda k: shares[k])
        lines[-1] += (f" The largest share of the difference's variance comes from **{biggest}**: more {biggest} "
                      "narrow the intervals most.")
    return lines


def type_table(m: dict[str, Any], baseline: str) -> list[str]:
    types = list(m["items_by_type"])
    head = ["arm", *[f"{t} (n={m['items_by_type'][t]})" for t in types]]
    rows = [[f"`{arm}`", *[fmt(r["by_type"].get(t)) for t in types]] for arm, r in m["rows"].items()]
    rows += [[f"`{arm}` − `{baseline}`", *[fmt((r["vs_baseline_by_type"].get(t) or {}).get("difference")) for t in types]]
             for arm, r in m["rows"].items() if r["vs_baseline"]]
    return table(head, rows)


def position_table(m: dict[str, Any], baseline: str) -> list[str]:
    """Each arm's mean per position bucket, then its difference against the baseline there."""
    head = ["arm", *[f"{b['low']:.2f}–{b['high']:.2f} (n={b['items']})" for b in m["position_buckets"]]]
    rows = [[f"`{arm}`", *[fmt(e) for e in r["by_position"]]] for arm, r in m["rows"].items()]
    rows += [[f"`{arm}` − `{baseline}`", *[fmt(c["difference"]) if c else "n/a" for c in r["vs_baseline_by_position"]]]
             for arm, r in m["rows"].items() if r["vs_baseline"]]
    return table(head, rows)


def model_table(m: dict[str, Any]) -> list[str]:
    rows = [[f"`{arm}`", ", ".join(f"{k} {v:.3f}" for k, v in r["model_means"].items())] for arm, r in m["rows"].items()]
    return table(["arm", "mean over the items, per model"], rows)


def tokens_table(arms: dict[str, Any]) -> list[str]:
    head = ["arm", "draws", "long samples (file)", "response tokens (file)", "all tokens (file)",
            "long samples seen", "response tokens seen", "context tokens seen", "short tokens seen", "all tokens seen"]
    rows = []
    for arm, a in arms.items():
        t = a.get("trained") or {}
        rows.append([f"`{arm}`", str(len(a["files"])), f"{a['samples']:,.1f}", f"{a['response_tokens']:,.0f}",
                     f"{a['tokens']:,.0f}", *[f"{t[k]:,.0f}" if k in t else "" for k in
                                              ("long_samples", "long_response_tokens", "long_context_tokens",
                                               "short_tokens", "tokens")]])
    return table(head, rows)


__all__ = ["fmt", "p_text", "measure_table", "component_table", "type_table", "position_table", "model_table",
           "tokens_table"]
