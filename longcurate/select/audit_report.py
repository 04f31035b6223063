"""The audit's report: the pass criteria first (fixed in the config, marked passed / failed by the point
estimate, with the interval beside it), then per figure the top-k shares, the AUROCs against the
reference type and the Spearman figures; report.md, the same numbers in report.json, and audit.png."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import atomic_open
from longcurate.core.plots import mpl, save_png
from longcurate.select.audit_config import AuditCriteria


def _row(figure: str, role: str, text: str, value: float | None, ci: list[float] | None, ok: bool | None) -> dict:
    if value is not None and not math.isfinite(value):
        ok = None
    return {"figure": figure, "role": role, "criterion": text, "value": value, "ci": ci, "passed": ok}


def criteria_rows(per_figure: dict[str, dict], chosen: dict[str, str], c: AuditCriteria,
                  types: list[str]) -> list[dict[str, Any]]:
    """Each criterion of the issue, for `gateau` and HMG alone (and CAS's one), with its measured value;
    `passed` is None where the pool lacks a type the criterion needs."""
    rows = []
    for role in ("gateau", "hmg"):
        name = chosen[role]
        st = per_figure[name]
        has = set(types)

        def share(t: str) -> tuple[float | None, list[float] | None]:
            return (st["top_k"][t], st["top_k_ci"][t]) if t in has else (None, None)

        v, ci = share("far")
        rows.append(_row(name, role, f"`far` share of the top k >= {c.far_top_share_min:.0%}", v, ci,
                         None if v is None else v >= c.far_top_share_min))
        v, ci = (st["auroc"]["local"], st["auroc_ci"]["local"]) if {"far", "local"} <= has else (None, None)
        rows.append(_row(name, role, f"AUROC(far vs local) >= {c.auroc_far_local_min:.2f}", v, ci,
                         None if v is None else v >= c.auroc_far_local_min))
        for t, limit in (("absent", c.absent_top_share_max), ("wrong", c.wrong_top_share_max)):
            v, ci = share(t)
            rows.append(_row(name, role, f"`{t}` share of the top k <= {limit:.0%}", v, ci,
                             None if v is None else v <= limit))
        v = st["spearman_response_tokens"]["far"] if "far" in has else None
        rows.append(_row(name, role, f"|Spearman with response tokens| inside `far` <= {c.far_response_spearman_max:.2f}",
                         v, None, None if v is None else abs(v) <= c.far_response_spearman_max))
    name = chosen["cas"]
    st = per_figure[name]
    ok = {"far", "absent"} <= set(types)
    v, ci = (st["auroc"]["absent"], st["auroc_ci"]["absent"]) if ok else (None, None)
    rows.append(_row(name, "cas", f"AUROC(far vs absent) >= {c.cas_auroc_far_absent_min:.2f}", v, ci,
                     None if v is None else v >= c.cas_auroc_far_absent_min))
    return rows


def _num(v: float | None, pct: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{100 * v:.0f}%" if pct else f"{v:.2f}"


def _with_ci(v: float | None, ci: list[float] | None, pct: bool = False) -> str:
    if ci is None or v is None or not all(math.isfinite(x) for x in ci):
        return _num(v, pct)
    if pct:
        return f"{100 * v:.0f}% [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"
    return f"{v:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else "PASS" if ok else "FAIL"


def format_criteria(rows: list[dict[str, Any]]) -> str:
    """The criteria as text lines (what the command prints)."""
    out = ["audit criteria (point estimate [95% CI]):"]
    for r in rows:
        pct = "share" in r["criterion"]
        out.append(f"  {_mark(r['passed']):4}  {r['figure']:<14} {r['criterion']:<52} "
                   f"{_with_ci(r['value'], r['ci'], pct)}")
    return "\n".join(out)


def markdown(result: dict[str, Any], plot_name: str) -> str:
    types, ref, k = result["types"], result["reference"], result["k"]
    others = [t for t in types if t != ref]
    s = result["settings"]
    lines = [
        "# Scorer audit: does each selection figure find long-range dependency?", "",
        f"Planted pool of {result['records']} records: {result['base_samples']} base samples, each once as "
        f"{', '.join(f'`{t}`' for t in types)} ({result['left_out_base_samples']} base samples left out for "
        f"missing scores). θ_B `{s['model_b']}`; θ_A `{s['model_a'] or s['model_b']}`, window {s['window']}, "
        f"RoPE {s['rope_scaling']}; far / local placed against a {s['audit_window']}-token window with "
        f"{s['margin']} tokens to spare. Prompt format {s['prompt_format']}, {s['max_segments']} CAM segments at "
        f"most; seed {s['seed']}. Higher scores are selected first; k = {k} (pool / types), chance share "
        f"{1 / len(types):.0%}.", "",
        "## Pass criteria", "",
        "Fixed in `select.audit.criteria` before the run; a criterion passes by its point estimate. Intervals: "
        f"95% cluster bootstrap over base samples ({s['bootstrap']} resamples).", "",
        "| figure | criterion | measured [95% CI] | result |", "|---|---|---|---|"]
    for r in result["criteria"]:
        lines.append(f"| `{r['figure']}` | {r['criterion'].replace('|', '&#124;')} | {_with_ci(r['value'], r['ci'], 'share' in r['criterion'])}"
                     f" | **{_mark(r['passed'])}** |")
    figs = result["figures"]
    lines += ["", f"## Share of each type in the top k (k = {k})", "",
              "| figure | " + " | ".join(f"`{t}`" for t in types) + " |", "|---" * (len(types) + 1) + "|"]
    lines += [f"| `{n}` | " + " | ".join(_with_ci(f["top_k"][t], f["top_k_ci"][t], True) for t in types) + " |"
              for n, f in figs.items()]
    lines += ["", f"## AUROC of `{ref}` against each type (0.50: no separation)", "",
              "| figure | " + " | ".join(f"vs `{t}`" for t in others) + " |", "|---" * (len(others) + 1) + "|"]
    lines += [f"| `{n}` | " + " | ".join(_with_ci(f["auroc"][t], f["auroc_ci"][t]) for t in others) + " |"
              for n, f in figs.items()]
    lines += ["", "## Spearman correlation", "",
              "With the response's token count inside each type (an answer-length proxy shows in every type), and "
              "with the evidence's distance beyond θ_A's view inside `far`.", "",
              "| figure | " + " | ".join(f"`{t}`: response tokens" for t in types) + " | `far`: evidence distance |",
              "|---" * (len(types) + 2) + "|"]
    lines += [f"| `{n}` | " + " | ".join(_num(f["spearman_response_tokens"][t]) for t in types)
              + f" | {_num(f['spearman_evidence_offset_far'])} |" for n, f in figs.items()]
    lines += ["", "## The pool", "", "| type | records | mean answer tokens | mean scored tokens (θ_B's row) | "
              "evidence offset from θ_A's view (min, max) |", "|---|---|---|---|---|"]
    for t in types:
        p = result["pool"][t]
        lines.append(f"| `{t}` | {p['records']} | {p['mean_response_tokens']:.1f} | {p['mean_tokens']:.0f} | "
                     f"{p['evidence_offset'] or '–'} |")
    lines += ["", f"![top-k shares and AUROCs per figure]({plot_name})", ""]
    return "\n".join(lines)


def figure(result: dict[str, Any]):
    """Left: each figure's top-k composition; right: AUROC of the reference type against each other
    type with its 95% interval."""
    plt = mpl()
    names = list(result["figures"])
    types, ref = result["types"], result["reference"]
    others = [t for t in types if t != ref]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.42 * len(names) + 1.8), sharey=True)
    ys = range(len(names))
    start = [0.0] * len(names)
    for t in types:
        widths = [result["figures"][n]["top_k"][t] for n in names]
        left.barh(ys, widths, left=start, label=t)
        start = [a + b for a, b in zip(start, widths)]
    left.axvline(1 / len(types), color="black", ls=":", lw=1)  # chance share of the first type
    left.set_yticks(list(ys), names)
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel(f"share of the top k = {result['k']}")
    left.legend(fontsize="small", ncol=len(types), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    for j, t in enumerate(others):
        off = (j - (len(others) - 1) / 2) * 0.22
        v = [result["figures"][n]["auroc"][t] for n in names]
        ci = [result["figures"][n]["auroc_ci"][t] for n in names]
        err = [[max(0.0, a - c[0]) for a, c in zip(v, ci)], [max(0.0, c[1] - a) for a, c in zip(v, ci)]]
        right.errorbar(v, [y + off for y in ys], xerr=err, fmt="o", ms=4, capsize=2, label=f"{ref} vs {t}")
    right.axvline(0.5, color="grey", ls="--", lw=1)
    right.set_xlim(0, 1)
    right.set_xlabel("AUROC (95% CI)")
    right.legend(fontsize="small", ncol=len(others), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return fig


def write_report(output: Path, result: dict[str, Any], plot: Path) -> None:
    """report.md beside `output` (report.json, written by the caller) and the plot."""
    with atomic_open(output.with_suffix(".md")) as f:
        f.write(markdown(result, plot.name))
    save_png(figure(result), plot)


__all__ = ["criteria_rows", "format_criteria", "markdown", "figure", "write_report"]
