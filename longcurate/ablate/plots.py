"""The ablation's figures (matplotlib, Agg), drawn from report.json's data: per-arm means with their
intervals, differences against the baseline, every model's mean (seeds and random draws), tokens
trained (response, context, short), and the position curve. File names come from the layout
(`AblationLayout.plot`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longcurate.core.ablation_layout import AblationLayout
from longcurate.eval.plots import mpl as pyplot, save


def interval_figure(names: list[str], estimates: list[dict[str, Any]], title: str, xlabel: str, zero: bool):
    """One horizontal error bar per row: the mean and its 95% interval."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(names)))
    for y, e in enumerate(estimates):
        if e["mean"] is None:
            continue
        ax.errorbar(e["mean"], y, xerr=[[e["mean"] - e["low"]], [e["high"] - e["mean"]]], fmt="o", capsize=4)
    if zero:
        ax.axvline(0.0, color="grey", lw=1, ls="--")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def models_figure(m: dict[str, Any], name: str):
    """One point per model (seed, and draw of a drawn arm): the spread the intervals hold."""
    plt = pyplot()
    rows = list(m["rows"].items())
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(rows)))
    for y, (_, r) in enumerate(rows):
        xs = [v for v in r["model_means"].values() if v is not None]
        ax.plot(xs, [y] * len(xs), "o", alpha=0.7)
    ax.set_yticks(range(len(rows)), [a for a, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"{name}: mean over items, one point per model (seed, draw)")
    ax.set_title("model-to-model spread: seeds and random subsets", fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def position_figure(m: dict[str, Any], name: str, baseline: str | None = None):
    """The position curve: each arm's mean per evidence-position bucket, or (with `baseline`) its
    paired difference against the baseline there; bands are 95% intervals."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    centres = [(b["low"] + b["high"]) / 2 for b in m["position_buckets"]]
    for arm, r in m["rows"].items():
        if baseline is None:
            cells = r["by_position"]
        elif r["vs_baseline"]:
            cells = [c["difference"] if c else {"mean": None} for c in r["vs_baseline_by_position"]]
        else:
            continue
        pts = [(x, e) for x, e in zip(centres, cells) if e["mean"] is not None]
        if not pts:
            continue
        xs = [x for x, _ in pts]
        line, = ax.plot(xs, [e["mean"] for _, e in pts], marker="o", label=arm)
        ax.fill_between(xs, [e["low"] for _, e in pts], [e["high"] for _, e in pts], color=line.get_color(), alpha=0.12)
    if baseline is not None:
        ax.axhline(0.0, color="grey", lw=1, ls="--")
    ax.set_xlabel("evidence position in the context (0 = start, 1 = end)")
    ax.set_ylabel(f"{name} ({m['better']} is better)" if baseline is None else f"{name}: arm − {baseline}")
    ax.set_title(f"position curve: {name}" + (f", paired against {baseline}" if baseline else "") + " (bands: 95% CI)",
                 fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def tokens_figure(arms: dict[str, Any]):
    plt = pyplot()
    names = list(arms)
    seen = [arms[a].get("trained") or {} for a in names]
    response = [t.get("long_response_tokens", 0) for t in seen]
    context = [t.get("long_context_tokens", 0) for t in seen]
    short = [t.get("short_tokens", 0) for t in seen]
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(names)))
    ax.barh(names, response, label="long response tokens seen")
    ax.barh(names, context, left=response, label="long context tokens seen")
    ax.barh(names, short, left=[r + c for r, c in zip(response, context)], label="short tokens seen")
    ax.invert_yaxis()
    ax.set_xlabel("tokens the optimiser saw (mean over seeds)")
    ax.set_title("tokens trained per arm", fontsize="medium")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def write_plots(data: dict[str, Any], ab: AblationLayout) -> dict[str, str]:
    """Every figure as a PNG in the ablation's plots folder; {title: path relative to the ablation folder}."""
    ab.plots.mkdir(parents=True, exist_ok=True)
    baseline = data["setup"]["baseline"]
    out: dict[str, Path] = {}
    for name, m in data["measures"].items():
        rows = m["rows"]
        vs = {a: r["vs_baseline"]["difference"] for a, r in rows.items() if r["vs_baseline"]}
        figures = {
            f"{name} per arm": (f"{name}-arms", interval_figure(
                list(rows), [r["mean"] for r in rows.values()], f"{name} per arm (95% cluster-bootstrap CI)",
                f"{m['what']} ({m['better']} is better)", zero=False)),
            f"{name} vs {baseline}": (f"{name}-vs-{baseline}", interval_figure(
                list(vs), list(vs.values()), f"{name}: arm − {baseline}, paired (95% cluster-bootstrap CI)",
                f"difference in {name}", zero=True)),
            f"{name} models": (f"{name}-models", models_figure(m, name)),
            f"{name} position curve": (f"{name}-position", position_figure(m, name)),
            f"{name} position curve vs {baseline}": (f"{name}-position-vs-{baseline}",
                                                     position_figure(m, name, baseline)),
        }
        for title, (stem, fig) in figures.items():
            out[title] = ab.plot(stem)
            save(fig, out[title])
    out["tokens"] = ab.plot("tokens")
    save(tokens_figure(data["arms"]), out["tokens"])
    return {k: str(p.relative_to(ab.root)) for k, p in out.items()}


__all__ = ["write_plots"]
