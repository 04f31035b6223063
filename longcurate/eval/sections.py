"""The report's section of each task (`tasks.Task.section`) and its plots (`tasks.Task.figures`):
Markdown tables where every figure is a mean over items (LongBench-Chat: over rated cases) with its
95% bootstrap interval (`core.stats`), except the position gaps and the needle grids' cells, which are
marked descriptive; plots of score vs key position per probe task, the needle heatmap and the answer
NLL by evidence position per model (`plots.py`).

A section is `(results, figures) -> lines`, `figures` mapping a figure's name to its link; a figures
function is `(results, EvalFiles) -> {name: link}` and saves the plots it links.
"""

from __future__ import annotations

import math
from typing import Any

from longcurate.core.eval_layout import EvalFiles
from longcurate.core.stats import Estimate
from longcurate.eval import plots
from longcurate.eval.results import ModelResults
from longcurate.eval.scoring import interval


def pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def ci(est: dict[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    """`mean [low, high]` of an interval dict (`scoring.interval`), times `scale`; "–" when empty."""
    if not est or not est.get("n"):
        return "–"
    return Estimate(est["mean"], est["low"], est["high"], est["n"]).format(scale, digits)


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows), ""]


def slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def _lb(v: Any) -> str:
    if isinstance(v, dict):
        return " / ".join(_lb(x) for x in v.values())
    return "–" if v is None else str(v)


# --- probes -------------------------------------------------------------------------------------

def probe_tasks(results: list[ModelResults]) -> list[str]:
    from longcurate.eval.probes import TASKS

    found = {t for r in results if r.get("probes") for t in r.get("probes").get("tasks", {})}
    return [t for t in TASKS if t in found] + sorted(found - set(TASKS))


def probe_lines(results: list[ModelResults], figures: dict[str, str]) -> list[str]:
    tasks = probe_tasks(results)
    with_probes = [(r.label, r.get("probes")) for r in results if r.get("probes")]
    if not tasks:
        return []
    span = with_probes[0][1].get("span")
    lines = ["## VaL-style probes", "", "Score in % per task and over all items: mean over items [95% CI].", ""]
    rows = [[label, *(ci(p["tasks"].get(t, {}).get("mean")) for t in tasks), ci((p.get("all") or {}).get("mean")),
             f"{p['n_scored']} ({p['n_failed']})"] for label, p in with_probes]
    lines += table(["model", *tasks, "all items", "items (failed)"], rows)
    lines += [f"Position gap in % (max − min of the span means, {span} position(s) per span; lower is better; "
              "descriptive, no interval):", ""]
    rows = [[label, *(pct(p["tasks"].get(t, {}).get("gap")) for t in tasks), pct((p.get("all") or {}).get("gap"))]
            for label, p in with_probes]
    lines += table(["model", *tasks, "all (mean of tasks)"], rows)
    for t in tasks:
        if f"probe_{t}" in figures:
            lines += [f"![{t} probe: score vs position]({figures[f'probe_{t}']})", ""]
    return lines


def probe_figures(results: list[ModelResults], evals: EvalFiles) -> dict[str, str]:
    figures = {}
    for t in probe_tasks(results):
        plots.save(plots.probe_figure(results, t), evals.plot(f"probe_{slug(t)}"))
        figures[f"probe_{t}"] = evals.plot_link(f"probe_{slug(t)}")
    return figures


# --- needle -------------------------------------------------------------------------------------

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
    return table(["depth", *(str(L) for L in n["lengths"])],
                 [[f"{d:g}%", *(cell(v) for v in row)] for d, row in zip(n["depths"], n["grid"])])


def _rating(v: float | None) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:.1f}"


def needle_lines(results: list[ModelResults], figures: dict[str, str]) -> list[str]:
    needles = [(r.label, r.get("needle")) for r in results if r.get("needle")]
    if not needles:
        return []
    judged = any(n.get("judge") for _, n in needles)
    lines = ["## Needle in a haystack", "", "Key-word recall in %: mean over items [95% CI].", ""]
    if judged:
        lines += ["Judge rating: LongAlign's 1-10 rating of each answer against the needle, mean over rated items "
                  "[95% CI]; an item whose replies hold no rating is failed, one not sent is pending, never a 0.", ""]
    lines += table(["model", "recall", "items (failed)", *(["judge rating (1-10)", "rated (failed)", "judge"]
                                                           if judged else [])],
                   [[label, ci(n.get("mean")), f"{n['n_scored']} ({n['n_failed']})",
                     *(_needle_judge_cells(n.get("judge")) if judged else [])] for label, n in needles])
    lines += ["By needle depth (rows) and haystack length in tokens (columns); one item per cell, descriptive.", ""]
    for label, n in needles:
        lines += [f"**{label}**", "", *_grid(n, pct)]
        judge = n.get("judge") or {}
        if judge.get("lengths"):
            lines += [f"**{label}**, judge rating (1-10)", "", *_grid(judge, _rating)]
        if f"needle_{label}" in figures:
            lines += [f"![needle heatmap: {label}]({figures[f'needle_{label}']})", ""]
    return lines


def per_model_figures(results: list[ModelResults], evals: EvalFiles, task: str, part: str, key: str,
                      plot_name: str, draw: Any) -> dict[str, str]:
    """One plot per model that has `part` in its `task` results: `{key}_{label}` -> the plot's link."""
    figures = {}
    for r in results:
        if r.get(task) and r.get(task).get(part):
            name = f"{plot_name}_{slug(r.label)}"
            plots.save(draw(r), evals.plot(name))
            figures[f"{key}_{r.label}"] = evals.plot_link(name)
    return figures


def needle_figures(results: list[ModelResults], evals: EvalFiles) -> dict[str, str]:
    return per_model_figures(results, evals, "needle", "lengths", "needle", "needle", plots.needle_figure)


# --- answer NLL ---------------------------------------------------------------------------------

def nll_lines(results: list[ModelResults], figures: dict[str, str]) -> list[str]:
    with_nll = [(r.label, r.get("nll")) for r in results if r.get("nll")]
    if not with_nll:
        return []
    lines = ["## Answer NLL", "", "Teacher-forced NLL of the gold answer given its long context, in nats per answer "
             "token (lower is better): mean over items [95% CI].", ""]
    sources = sorted({s for _, n in with_nll for s in n.get("by_source", {})})
    lines += table(["model", *sources, "all", "items (failed)"],
                   [[label, *(ci(n["by_source"].get(s), 1, 3) for s in sources), ci(n.get("all"), 1, 3),
                     f"{n.get('n_scored')} ({n.get('n_failed')})"] for label, n in with_nll])
    tasks = sorted({t for _, n in with_nll for t in n.get("by_task", {})})
    lines += ["By source / task:", ""]
    lines += table(["model", *tasks], [[label, *(ci(n["by_task"].get(t), 1, 3) for t in tasks)] for label, n in with_nll])
    lines += ["By evidence position (0 = start of the context, 1 = end):", ""]
    rows: list[list[str]] = []
    edges: list[str] = []
    for label, n in with_nll:
        for source, cells in sorted(n.get("by_position", {}).items()):
            edges = edges or [f"{c['bucket'][0]:g}–{c['bucket'][1]:g}" for c in cells]
            rows.append([label, source, *(ci(c, 1, 3) for c in cells)])
    if rows:
        lines += table(["model", "source", *edges], rows)
    for label, _ in with_nll:
        if f"nll_{label}" in figures:
            lines += [f"![answer NLL by position: {label}]({figures[f'nll_{label}']})", ""]
    return lines


def nll_figures(results: list[ModelResults], evals: EvalFiles) -> dict[str, str]:
    return per_model_figures(results, evals, "nll", "by_position", "nll", "nll_position", plots.nll_position_figure)


# --- LongBench, LongBench-Chat ------------------------------------------------------------------

def longbench_lines(results: list[ModelResults], figures: dict[str, str]) -> list[str]:
    lbs = [(r.label, r.get("longbench")) for r in results
           if r.get("longbench") and isinstance(r.get("longbench").get("scores"), dict)]
    if not lbs:
        return []
    names = sorted({k for _, lb in lbs for k in lb["scores"]})
    lines = ["## LongBench", "", "Scores on LongBench's 0–100 scale (LongBench-E: 0-4k / 4-8k / 8k+); a task's "
             "mean over items [95% CI] below its score when recorded; the average is over tasks.", ""]
    rows = []
    for label, lb in lbs:
        intervals = lb.get("intervals") or {}
        cells = [_lb(lb["scores"].get(k)) + (f"<br>{ci(intervals[k], 1, 2)}" if k in intervals else "") for k in names]
        rows.append([label, *cells, _lb(lb.get("average"))])
    return lines + table(["model", *names, "average"], rows)


def chat_score(result: dict[str, Any]) -> dict[str, Any]:
    """LongBench-Chat's score (mean rating x 10) over its rated cases with its 95% bootstrap interval."""
    ratings = [10 * float(c["rating"]) for c in result.get("cases", []) if c.get("rating") is not None]
    return interval(ratings)


def longbench_chat_lines(results: list[ModelResults], figures: dict[str, str]) -> list[str]:
    chats = [(r.label, r.get("longbench-chat")) for r in results if r.get("longbench-chat")]
    if not chats:
        return []
    lines = ["## LongBench-Chat", "", "Score: the judge's 1-10 rating x 10, mean over rated cases [95% CI]; a case "
             "whose replies hold no rating is failed, one not sent is pending; neither counts, neither is a 0.", ""]
    rows = []
    for label, res in chats:
        est = chat_score(res)
        score = ci(est, 1, 2) if est["n"] else ("–" if res.get("score") is None else f"{res['score']:.2f}")
        rows.append([label, score, _rated(res), _judge_model(res)])
    return lines + table(["model", "score", "rated (failed)", "judge"], rows)


__all__ = ["pct", "ci", "table", "slug", "probe_tasks", "probe_lines", "probe_figures", "needle_lines",
           "needle_figures", "nll_lines", "nll_figures", "longbench_lines", "chat_score", "longbench_chat_lines"]
