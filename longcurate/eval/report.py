"""The eval report: Markdown tables and PNG plots over one or more models' result folders.

A model's folder holds `probes/results.json`, `needle/results.json` and `nll/results.json` (what the
eval verbs write); LongBench results (`longbench/result.json`), LongBench-Chat's (`longbench-chat/
result.json`) and the needle's judge rating (`eval needle --judge`: `judge` in the needle's results) are
tabulated when present, and add nothing when absent. The contamination check's line comes first; every
figure is a mean over items (LongBench-Chat: over rated cases) with its 95% bootstrap interval
(`core.stats`), except the position gaps and the needle grids' cells, which are marked descriptive. Plots (`plots.py`): score vs key position per probe task, the needle heatmap and the
answer NLL by evidence position (with interval error bars) per model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import atomic_open
from longcurate.core.stats import Estimate
from longcurate.eval import plots
from longcurate.eval.scoring import interval


@dataclass
class ModelResults:
    label: str
    folder: Path
    probes: dict[str, Any] | None = None
    needle: dict[str, Any] | None = None
    longbench: dict[str, Any] | None = None
    nll: dict[str, Any] | None = None
    longbench_chat: dict[str, Any] | None = None


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
                       _read(folder / "needle" / "results.json"), lb, _read(folder / "nll" / "results.json"),
                       _read(folder / "longbench-chat" / "result.json"))
    if all(x is None for x in (res.probes, res.needle, res.longbench, res.nll, res.longbench_chat)):
        raise FileNotFoundError(f"{folder}: no probes/results.json, needle/results.json, nll/results.json, "
                                "longbench/result.json or longbench-chat/result.json")
    return res


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def ci(est: dict[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    """`mean [low, high]` of an interval dict (`scoring.interval`), times `scale`; "–" when empty."""
    if not est or not est.get("n"):
        return "–"
    return Estimate(est["mean"], est["low"], est["high"], est["n"]).format(scale, digits)


def _lb(v: Any) -> str:
    if isinstance(v, dict):
        return " / ".join(_lb(x) for x in v.values())
    return "–" if v is None else str(v)


def probe_tasks(results: list[ModelResults]) -> list[str]:
    from longcurate.eval.probes import TASKS

    found = {t for r in results if r.probes for t in r.probes.get("tasks", {})}
    return [t for t in TASKS if t in found] + sorted(found - set(TASKS))


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows), ""]


def contamination_lines(contamination: dict[str, Any] | None) -> list[str]:
    from longcurate.eval.contamination import summary_line

    if contamination is None:
        return ["**Contamination:** not checked (no training data in this run: no mixture, no samples).", ""]
    return [summary_line(contamination) + " Per item: `contamination.json`.", ""]


def probe_lines(results: list[ModelResults], figures: dict[str, str]) -> list[str]:
    tasks = probe_tasks(results)
    with_probes = [r for r in results if r.probes]
    if not tasks:
        return []
    span = with_probes[0].probes.get("span")
    lines = ["## VaL-style probes", "", "Score in % per task and over all items: mean over items [95% CI].", ""]
    rows = [[r.label, *(ci(r.probes["tasks"].get(t, {}).get("mean")) for t in tasks),
             ci((r.probes.get("all") or {}).get("mean")), f"{r.probes['n_scored']} ({r.probes['n_failed']})"]
            for r in with_probes]
    lines += _table(["model", *tasks, "all items", "items (failed)"], rows)
    lines += [f"Position gap in % (max − min of the span means, {span} position(s) per span; lower is better; "
              "descriptive, no interval):", ""]
    rows = [[r.label, *(_pct(r.probes["tasks"].get(t, {}).get("gap")) for t in tasks),
             _pct((r.probes.get("all") or {}).get("gap"))] for r in with_probes]
    lines += _table(["model", *tasks, "all (mean of tasks)"], rows)
    for t in tasks:
        if f"probe_{t}" in figures:
            lines += [f"![{t} probe: score vs position]({figures[f'probe_{t}']})", ""]
    return lines


def _rated(res: dict[str, Any]) -> str:
    """`rated (failed)` of a judge-rated result, with the pending cases when there are any."""
    pending = res.get("n_pending") or 0
    return f"{res.get('n_rated')} ({res.get('n_failed')})" + (f", {pending} pending" if pending else "")


def _judge_model(res: dict[str, Any]) -> str:
    return str((res.get("judge") or {}).get("model") or "–")


def _needle_judge_cells(judge: dict[str, Any] | None) -> list[str]:
    """The needle row's judge columns: mean rating [95% CI], rated (failed), the judge model."""
    if not judge:
        return ["–", "–", "–"]
    return [ci(judge.get("mean"), 1, 2), _rated(judge), _judge_model(judge)]


def _grid(n: dict[str, Any], cell: Any) -> list[str]:
    return _table(["depth", *(str(L) for L in n["lengths"])],
                  [[f"{d:g}%", *(cell(v) for v in row)] for d, row in zip(n["depths"], n["grid"])])


def _rating(v: float | None) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:.1f}"


def needle_lines(results: list[ModelResults], figures: dict[str, str]) -> list[str]:
    needles = [r for r in results if r.needle]
    if not needles:
        return []
    judged = any(r.needle.get("judge") for r in needles)
    lines = ["## Needle in a haystack", "", "Key-word recall in %: mean over items [95% CI].", ""]
    if judged:
        lines += ["Judge rating: LongAlign's 1-10 rating of each answer against the needle, mean over rated items "
                  "[95% CI]; an item whose replies hold no rating is failed, one not sent is pending, never a 0.", ""]
    lines += _table(["model", "recall", "items (failed)", *(["judge rating (1-10)", "rated (failed)", "judge"]
                                                            if judged else [])],
                    [[r.label, ci(r.needle.get("mean")), f"{r.needle['n_scored']} ({r.needle['n_failed']})",
                      *(_needle_judge_cells(r.needle.get("judge")) if judged else [])] for r in needles])
    lines += ["By needle depth (rows) and haystack length in tokens (columns); one item per cell, descriptive.", ""]
    for r in needles:
        lines += [f"**{r.label}**", "", *_grid(r.needle, _pct)]
        judge = r.needle.get("judge") or {}
        if judge.get("lengths"):
            lines += [f"**{r.label}**, judge rating (1-10)", "", *_grid(judge, _rating)]
        if f"needle_{r.label}" in figures:
            lines += [f"![needle heatmap: {r.label}]({figures[f'needle_{r.label}']})", ""]
    return lines


def nll_lines(results: list[ModelResults], figures: dict[str, str]) -> list[str]:
    with_nll = [r for r in results if r.nll]
    if not with_nll:
        return []
    lines = ["## Answer NLL", "", "Teacher-forced NLL of the gold answer given its long context, in nats per answer "
             "token (lower is better): mean over items [95% CI].", ""]
    sources = sorted({s for r in with_nll for s in r.nll.get("by_source", {})})
    lines += _table(["model", *sources, "all", "items (failed)"],
                    [[r.label, *(ci(r.nll["by_source"].get(s), 1, 3) for s in sources), ci(r.nll.get("all"), 1, 3),
                      f"{r.nll.get('n_scored')} ({r.nll.get('n_failed')})"] for r in with_nll])
    tasks = sorted({t for r in with_nll for t in r.nll.get("by_task", {})})
    lines += ["By source / task:", ""]
    lines += _table(["model", *tasks], [[r.label, *(ci(r.nll["by_task"].get(t), 1, 3) for t in tasks)]
                                        for r in with_nll])
    lines += ["By evidence position (0 = start of the context, 1 = end):", ""]
    rows: list[list[str]] = []
    edges: list[str] = []
    for r in with_nll:
        for source, cells in sorted(r.nll.get("by_position", {}).items()):
            edges = edges or [f"{c['bucket'][0]:g}–{c['bucket'][1]:g}" for c in cells]
            rows.append([r.label, source, *(ci(c, 1, 3) for c in cells)])
    if rows:
        lines += _table(["model", "source", *edges], rows)
    for r in with_nll:
        if f"nll_{r.label}" in figures:
            lines += [f"![answer NLL by position: {r.label}]({figures[f'nll_{r.label}']})", ""]
    return lines


def longbench_lines(results: list[ModelResults]) -> list[str]:
    lbs = [r for r in results if r.longbench and isinstance(r.longbench.get("scores"), dict)]
    if not lbs:
        return []
    names = sorted({k for r in lbs for k in r.longbench["scores"]})
    lines = ["## LongBench", "", "Scores on LongBench's 0–100 scale (LongBench-E: 0-4k / 4-8k / 8k+); a task's "
             "mean over items [95% CI] below its score when recorded; the average is over tasks.", ""]
    rows = []
    for r in lbs:
        intervals = r.longbench.get("intervals") or {}
        cells = [_lb(r.longbench["scores"].get(k)) + (f"<br>{ci(intervals[k], 1, 2)}" if k in intervals else "")
                 for k in names]
        rows.append([r.label, *cells, _lb(r.longbench.get("average"))])
    return lines + _table(["model", *names, "average"], rows)


def chat_score(result: dict[str, Any]) -> dict[str, Any]:
    """LongBench-Chat's score (mean rating x 10) over its rated cases with its 95% bootstrap interval."""
    ratings = [10 * float(c["rating"]) for c in result.get("cases", []) if c.get("rating") is not None]
    return interval(ratings)


def longbench_chat_lines(results: list[ModelResults]) -> list[str]:
    chats = [r for r in results if r.longbench_chat]
    if not chats:
        return []
    lines = ["## LongBench-Chat", "", "Score: the judge's 1-10 rating x 10, mean over rated cases [95% CI]; a case "
             "whose replies hold no rating is failed, one not sent is pending; neither counts, neither is a 0.", ""]
    rows = []
    for r in chats:
        res, est = r.longbench_chat, chat_score(r.longbench_chat)
        score = ci(est, 1, 2) if est["n"] else ("–" if res.get("score") is None else f"{res['score']:.2f}")
        rows.append([r.label, score, _rated(res), _judge_model(res)])
    return lines + _table(["model", "score", "rated (failed)", "judge"], rows)


def markdown(results: list[ModelResults], figures: dict[str, str], contamination: dict[str, Any] | None = None) -> str:
    """The report's text; `figures` maps a figure name to its path relative to the report."""
    lines = ["# longcurate eval report", "", *contamination_lines(contamination)]
    lines += ["Models: " + ", ".join(f"**{r.label}** (`{r.folder}`)" for r in results), ""]
    lines += probe_lines(results, figures) + needle_lines(results, figures) + nll_lines(results, figures)
    lines += longbench_lines(results) + longbench_chat_lines(results)
    fails = [(r.label, kind, f) for r in results
             for kind, res in (("probes", r.probes), ("needle", r.needle), ("nll", r.nll))
             if res for f in res.get("failures", [])]
    if fails:
        lines += ["## Failed items", ""]
        lines += _table(["model", "kind", "id", "error"], [[m, k, f["id"], f["error"][:120]] for m, k, f in fails])
    return "\n".join(lines)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def write_report(results: list[ModelResults], out_dir: str | Path, contamination: dict[str, Any] | None = None) -> Path:
    """Write `report.md` and `plots/*.png` into `out_dir`; returns the report's path. `contamination`:
    the check's JSON (its line opens the report; None says it was not checked)."""
    out_dir = Path(out_dir)
    figures: dict[str, str] = {}
    for t in probe_tasks(results):
        rel = f"plots/probe_{_slug(t)}.png"
        plots.save(plots.probe_figure(results, t), out_dir / rel)
        figures[f"probe_{t}"] = rel
    for r in results:
        if r.needle and r.needle.get("lengths"):
            rel = f"plots/needle_{_slug(r.label)}.png"
            plots.save(plots.needle_figure(r), out_dir / rel)
            figures[f"needle_{r.label}"] = rel
        if r.nll and r.nll.get("by_position"):
            rel = f"plots/nll_position_{_slug(r.label)}.png"
            plots.save(plots.nll_position_figure(r), out_dir / rel)
            figures[f"nll_{r.label}"] = rel
    path = out_dir / "report.md"
    with atomic_open(path) as f:
        f.write(markdown(results, figures, contamination))
    return path
