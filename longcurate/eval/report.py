"""The eval report: Markdown tables and PNG plots over one or more models' result folders.

A model's folder holds `probes/results.json` and/or `needle/results.json` (what `longcurate eval
probes | needle` write); LongBench results (`longbench/result.json`) are tabulated when present.
Plots: score vs key position per probe task (one line per model), needle depth × length heatmap per
model. Figures are built by functions that return them (tests inspect axes and legends), then saved.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import atomic_open


@dataclass
class ModelResults:
    label: str
    folder: Path
    probes: dict[str, Any] | None = None
    needle: dict[str, Any] | None = None
    longbench: dict[str, Any] | None = None


def _read(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_results(folder: str | Path, label: str | None = None) -> ModelResults:
    folder = Path(folder)
    lb = next((x for x in (_read(folder / "longbench" / sub / "result.json") for sub in ("pred", "pred_e", "."))
               if x is not None), None)
    res = ModelResults(label or folder.name, folder, _read(folder / "probes" / "results.json"),
                       _read(folder / "needle" / "results.json"), lb)
    if res.probes is None and res.needle is None and res.longbench is None:
        raise FileNotFoundError(f"{folder}: no probes/results.json, needle/results.json or longbench/result.json")
    return res


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _lb(v: Any) -> str:
    if isinstance(v, dict):
        return " / ".join(_lb(x) for x in v.values())
    return "–" if v is None else str(v)


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def probe_figure(results: list[ModelResults], task: str):
    """Score vs key position for one probe task, one line per model."""
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for r in results:
        t = (r.probes or {}).get("tasks", {}).get(task)
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
    plt = _mpl()
    n = result.needle
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


def _save(fig, path: Path) -> None:
    plt = _mpl()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def probe_tasks(results: list[ModelResults]) -> list[str]:
    from longcurate.eval.probes import TASKS

    found = {t for r in results if r.probes for t in r.probes.get("tasks", {})}
    return [t for t in TASKS if t in found] + sorted(found - set(TASKS))


def markdown(results: list[ModelResults], plots: dict[str, str]) -> str:
    """The report's text; `plots` maps a figure name to its path relative to the report."""
    lines = ["# longcurate eval report", ""]
    lines.append("Models: " + ", ".join(f"**{r.label}** (`{r.folder}`)" for r in results))
    lines.append("")
    tasks = probe_tasks(results)
    if tasks:
        span = next((r.probes.get("span") for r in results if r.probes), None)
        lines += ["## VaL-style probes", "",
                  f"Scores in %; avg = mean over position spans ({span} position(s) each), "
                  "gap = max − min over spans (lower is better).", ""]
        head = "| model | " + " | ".join(f"{t} avg / gap" for t in tasks) + " | all avg / gap | items (failed) |"
        lines += [head, "|" + "---|" * (len(tasks) + 3)]
        for r in results:
            if not r.probes:
                continue
            cells = []
            for t in tasks:
                s = r.probes["tasks"].get(t)
                cells.append(f"{_pct(s['avg'])} / {_pct(s['gap'])}" if s else "–")
            a = r.probes.get("all") or {}
            lines.append(f"| {r.label} | " + " | ".join(cells) +
                         f" | {_pct(a.get('avg'))} / {_pct(a.get('gap'))} | {r.probes['n_scored']} ({r.probes['n_failed']}) |")
        lines.append("")
        for t in tasks:
            if f"probe_{t}" in plots:
                lines += [f"![{t} probe: score vs position]({plots[f'probe_{t}']})", ""]
    needles = [r for r in results if r.needle]
    if needles:
        lines += ["## Needle in a haystack", "", "Key-word recall (%) by needle depth (rows) and haystack length "
                  "in tokens (columns).", ""]
        for r in needles:
            n = r.needle
            lines += [f"**{r.label}** (mean {_pct(n['avg'])}, items {n['n_scored']}, failed {n['n_failed']})", "",
                      "| depth | " + " | ".join(str(L) for L in n["lengths"]) + " |",
                      "|" + "---|" * (len(n["lengths"]) + 1)]
            for d, row in zip(n["depths"], n["grid"]):
                lines.append(f"| {d:g}% | " + " | ".join(_pct(v) for v in row) + " |")
            lines.append("")
            if f"needle_{r.label}" in plots:
                lines += [f"![needle heatmap: {r.label}]({plots[f'needle_{r.label}']})", ""]
    lbs = [r for r in results if r.longbench and isinstance(r.longbench.get("scores"), dict)]
    if lbs:
        names = sorted({k for r in lbs for k in r.longbench["scores"]})
        lines += ["## LongBench", "", "Scores on LongBench's 0–100 scale (LongBench-E: 0-4k / 4-8k / 8k+).", "",
                  "| model | " + " | ".join(names) + " | average |", "|" + "---|" * (len(names) + 2)]
        for r in lbs:
            cells = [_lb(r.longbench["scores"].get(k)) for k in names] + [_lb(r.longbench.get("average"))]
            lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
        lines.append("")
    fails = [(r.label, kind, f) for r in results for kind, res in (("probes", r.probes), ("needle", r.needle))
             if res for f in res.get("failures", [])]
    if fails:
        lines += ["## Failed items", "", "| model | kind | id | error |", "|---|---|---|---|"]
        lines += [f"| {m} | {k} | {f['id']} | {f['error'][:120]} |" for m, k, f in fails]
        lines.append("")
    return "\n".join(lines)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def write_report(results: list[ModelResults], out_dir: str | Path) -> Path:
    """Write `report.md` and `plots/*.png` into `out_dir`; returns the report's path."""
    out_dir = Path(out_dir)
    plots: dict[str, str] = {}
    for t in probe_tasks(results):
        rel = f"plots/probe_{_slug(t)}.png"
        _save(probe_figure(results, t), out_dir / rel)
        plots[f"probe_{t}"] = rel
    for r in results:
        if r.needle and r.needle.get("lengths"):
            rel = f"plots/needle_{_slug(r.label)}.png"
            _save(needle_figure(r), out_dir / rel)
            plots[f"needle_{r.label}"] = rel
    path = out_dir / "report.md"
    with atomic_open(path) as f:
        f.write(markdown(results, plots))
    return path
