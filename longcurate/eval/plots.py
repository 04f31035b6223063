"""The report's figures, built by functions that return them (tests inspect axes, legends and error
bars), then saved as PNGs with fixed metadata (the same results give the same bytes)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from longcurate.core.jsonl import atomic_open

if TYPE_CHECKING:
    from longcurate.eval.results import ModelResults


def mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def probe_figure(results: list[ModelResults], task: str):
    """Score vs key position for one probe task, one line per model."""
    plt = mpl()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for r in results:
        t = (r.get("probes") or {}).get("tasks", {}).get(task)
        if not t:
            continue
        xs = [p["position_id"] for p in t["by_position"]]
        ys = [100 * p["score"] for p in t["by_position"]]
        ax.plot(xs, ys, marker="o", label=f"{r.label} (avg {100 * t['avg']:.1f}, gap {100 * t['gap']:.1f})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("key position (position_id; 0 = start of the context)")
    ax.set_ylabel("score (%)")
    ax.set_ylim(-5, 105)
    ax.set_title(f"VaL probe: {task} retrieval")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return fig


def needle_figure(result: ModelResults):
    """Needle depth × haystack length heatmap for one model."""
    plt = mpl()
    n = result.get("needle")
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(n["lengths"]), 1.4 + 0.6 * len(n["depths"])))
    grid = [[float("nan") if v is None else 100 * v for v in row] for row in n["grid"]]
    im = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(n["lengths"])), [str(x) for x in n["lengths"]])
    ax.set_yticks(range(len(n["depths"])), [f"{d:g}%" for d in n["depths"]])
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, "–" if math.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=8)
    ax.set_xlabel("haystack length (tokens)")
    ax.set_ylabel("needle depth")
    ax.set_title(f"needle in a haystack: {result.label}")
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label("key-word recall (%)")
    fig.tight_layout()
    return fig


def nll_position_figure(result: ModelResults):
    """Answer NLL by where the evidence sits, one line per source (probes, held-out samples), with
    95% bootstrap intervals as error bars; empty buckets are left out."""
    plt = mpl()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for source, cells in sorted((result.get("nll") or {}).get("by_position", {}).items()):
        kept = [c for c in cells if c["n"]]
        xs = [(c["bucket"][0] + c["bucket"][1]) / 2 for c in kept]
        ys = [c["mean"] for c in kept]
        err = [[c["mean"] - c["low"] for c in kept], [c["high"] - c["mean"] for c in kept]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=f"{source} ({sum(c['n'] for c in kept)} items)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("evidence position (0 = start of the context, 1 = end)")
    ax.set_ylabel("answer NLL (nats / token)")
    ax.set_title(f"answer NLL by position: {result.label} (95% CI)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return fig


def save(fig, path: Path) -> None:
    plt = mpl()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


__all__ = ["probe_figure", "needle_figure", "nll_position_figure", "save", "mpl"]
