"""The ablation's figures (matplotlib, Agg), drawn from report.json's data: per-arm means with their
intervals, differences against the baseline, per-seed means, tokens trained, and the position curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def seeds_figure(m: dict[str, Any], name: str):
    plt = pyplot()
    rows = list(m["rows"].items())
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(rows)))
    for y, (_, r) in enumerate(rows):
        xs = [v for v in r["seed_means"].values() if v is not None]
        ax.plot(xs, [y] * len(xs), "o", alpha=0.7)
    ax.set_yticks(range(len(rows)), [a for a, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"{name}: mean over items, one point per seed")
    ax.set_title("seed-to-seed spread", fontsize="medium")
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
    long = [(arms[a].get("trained") or {}).get("long_tokens", 0) for a in names]
    short = [(arms[a].get("trained") or {}).get("short_tokens", 0) for a in names]
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(names)))
    ax.barh(names, long, label="long tokens seen")
    ax.barh(names, short, left=long, label="short tokens seen")
    ax.invert_yaxis()
    ax.set_xlabel("tokens the optimiser saw (mean over seeds)")
    ax.set_title("tokens trained per arm", fontsize="medium")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def write_plots(data: dict[str, Any], folder: Path, rel_to: Path) -> dict[str, str]:
    """Every figure as a PNG in `folder`; {title: path relative to `rel_to`}."""
    folder.mkdir(parents=True, exist_ok=True)
    baseline = data["setup"]["baseline"]
    out: dict[str, Path] = {}
    for name, m in data["measures"].items():
        rows = m["rows"]
        out[f"{name} per arm"] = folder / f"{name}-arms.png"
        save(interval_figure(list(rows), [r["mean"] for r in rows.values()], f"{name} per arm (95% CI over items)",
                             f"{m['what']} ({m['better']} is better)", zero=False), out[f"{name} per arm"])
        vs = {a: r["vs_baseline"]["difference"] for a, r in rows.items() if r["vs_baseline"]}
        out[f"{name} vs {baseline}"] = folder / f"{name}-vs-{baseline}.png"
        save(interval_figure(list(vs), list(vs.values()), f"{name}: arm − {baseline}, paired (95% CI)",
                             f"difference in {name}", zero=True), out[f"{name} vs {baseline}"])
        out[f"{name} seeds"] = folder / f"{name}-seeds.png"
        save(seeds_figure(m, name), out[f"{name} seeds"])
        out[f"{name} position curve"] = folder / f"{name}-position.png"
        save(position_figure(m, name), out[f"{name} position curve"])
        out[f"{name} position curve vs {baseline}"] = folder / f"{name}-position-vs-{baseline}.png"
        save(position_figure(m, name, baseline), out[f"{name} position curve vs {baseline}"])
    out["tokens"] = folder / "tokens.png"
    save(tokens_figure(data["arms"]), out["tokens"])
    return {k: str(p.relative_to(rel_to)) for k, p in out.items()}


__all__ = ["write_plots"]
