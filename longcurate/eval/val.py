"""FILM's official VaL probing, scored exactly as its released `VaLProbing/plot.py` scores it
(docs/reference.md, "VaL probing (FILM)"), so a model's numbers compare with the paper's Table 1.

    <data>/document_bi_32k.jsonl           prompt, completion, position_id, set_id
    <data>/code_backward_32k.jsonl         prompt, completion, position_id, set_id
    <data>/database_forward_32k.jsonl      prompt, label, description, position_id, set_id
    <data>/<name>_skip_list.json           0-based line indices left out (ambiguous keys)
    <predictions>/sample_<name>.jsonl      one line per data line: {"samples": [text]} or {"sample": text}

The rules, as released: document = |words(gt) ∩ words(pred)| / |words(gt)| (lower-cased, whitespace-split
word sets of the stripped texts); code = 1 if `gt.strip('.')` is in pred; database = 1 if the lower-cased
label or description, each stripped of '.', is in the lower-cased pred. Per set, spans of `span`
positions; the released loop reads `range(span_start, span_start + span - 1)`, so each span's last
position is left out, and so it is here. A span's score is the mean over its items, spans are averaged
over sets (error bars: their standard deviation over sets), avg = mean over spans, gap = max - min;
"all" averages the tasks' avg and gap. Positions and sets come from the data, never from constants.

Scoring is one step of `core.runner` (`run_val`): locked while it writes, skipped when the files it
reads (their digests), the span and the label are unchanged. A data line whose `position_id` or
`set_id` is not a whole number >= 0, or whose ground truth is not a string, is quarantined beside
the output (`<output>.rejected.jsonl`, with file, line, field and reason), counted (`n_rejected`) and
never scored; every other line is scored or the command stops with the line named (a file that is
not UTF-8, a data file without a usable line, predictions not line-aligned), so VaL never finishes
with items left pending.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longcurate.core.errors import UserError
from longcurate.core.jsonl import Rejects, RejectSink, atomic_open, file_digest, read_json_if_valid, write_json
from longcurate.core.records import RecordError
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.eval.item_checks import check_val_line

# task -> the released file name (without .jsonl)
FILES = {"document": "document_bi_32k", "code": "code_backward_32k", "database": "database_forward_32k"}
TITLES = {"document": "Document Sentence Retrieval (Bi-Direction)", "code": "Code Function Retrieval (Backward)",
          "database": "Database Entity Retrieval (Forward)"}
UNITS = {"document": "Sentences", "code": "Functions", "database": "Entities"}
SPAN = 50


@dataclass
class Label:
    """One data line's ground truth and place: `gt` (document, code) or label + description (database)."""

    line: int  # 0-based, as the skip lists count
    position_id: int
    set_id: int
    gt: str = ""
    description: str = ""


@dataclass
class TaskScore:
    task: str
    span: int
    sets: list[int]
    positions: int  # max position_id + 1
    spans: list[dict[str, Any]] = field(default_factory=list)  # {positions: [first, last read], score, std}
    n: int = 0  # items counted in a span
    n_lines: int = 0
    n_skipped: int = 0  # in the skip list, or quarantined (n_rejected of them)
    n_rejected: int = 0  # data lines with an unusable field (quarantined)
    n_left_out: int = 0  # scored but outside every span's read range (a span's last position, a partial span)

    def figures(self) -> dict[str, Any]:
        """avg and gap over spans, in percent, unrounded."""
        values = [s["score"] for s in self.spans]
        return {"avg": sum(values) / len(values), "gap": max(values) - min(values)}

    def to_dict(self) -> dict[str, Any]:
        return {**self.figures(), "n": self.n, "n_lines": self.n_lines, "n_skipped": self.n_skipped,
                "n_rejected": self.n_rejected, "n_left_out": self.n_left_out, "positions": self.positions, "sets": self.sets, "span": self.span,
                "spans": self.spans}


# --- the released rules -------------------------------------------------------------------------

def document_score(pred: str, gt: str) -> float:
    gt_words = set(gt.strip().lower().split())
    if not gt_words:
        raise ValueError("empty completion (the released rule divides by its word count)")
    return len(gt_words & set(pred.strip().lower().split())) / len(gt_words)


def code_score(pred: str, gt: str) -> float:
    return 1.0 if gt.strip(".") in pred else 0.0


def database_score(pred: str, label: str, description: str) -> float:
    p = pred.lower()
    return 1.0 if label.strip(".").lower() in p or description.strip(".").lower() in p else 0.0


def score_item(task: str, pred: str, label: Label) -> float:
    if task == "document":
        return document_score(pred, label.gt)
    if task == "code":
        return code_score(pred, label.gt)
    return database_score(pred, label.gt, label.description)


# --- reading ------------------------------------------------------------------------------------

def _json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file as an object (the released script reads them all, in order)."""
    if not path.exists():
        raise FileNotFoundError(f"VaL file not found: {path}")
    out = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{n}: not UTF-8 ({e.reason} at byte {e.start} of the line)") from None
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{n}: invalid JSON ({e.msg}); line indices must match the data") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{n}: not a JSON object")
            out.append(obj)
    return out


def read_labels(task: str, path: Path, rejects: RejectSink | None = None) -> tuple[list[Label], int]:
    """The usable data lines of a task and the number of lines; a line with an unusable field
    (`item_checks.check_val_line`) goes to `rejects` (without one, it stops the command)."""
    out = []
    lines = _json_lines(path)
    if not lines:
        raise UserError(f"{path}: empty (no data line)")
    for i, obj in enumerate(lines):
        try:
            check_val_line(obj, task)
        except RecordError as e:
            if rejects is None:
                raise UserError(f"{path}:{i + 1}: {e}") from None
            rejects.add(e.reason, file=str(path), line=i + 1, field_name=e.field)
            continue
        if task == "database":
            out.append(Label(i, obj["position_id"], obj["set_id"], obj["label"], obj["description"]))
        else:
            out.append(Label(i, obj["position_id"], obj["set_id"], obj["completion"]))
    if not out:
        raise UserError(f"{path}: none of its {len(lines)} lines is usable (see the quarantine)")
    return out, len(lines)


def read_skip_list(path: Path) -> set[int]:
    if not path.exists():
        raise FileNotFoundError(f"VaL skip list not found: {path} (FILM releases one per task)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    if not isinstance(data, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in data):
        raise UserError(f"{path}: must be a JSON list of 0-based line indices")
    return set(data)


def prediction_text(obj: dict[str, Any], where: str) -> str:
    """`{"samples": [text, ...]}` (the first sample) or `{"sample": text}` (the released GPT-4 file)."""
    if "samples" in obj:
        samples = obj["samples"]
        if not isinstance(samples, list) or not samples or not isinstance(samples[0], str):
            raise UserError(f"{where}: 'samples' must be a non-empty list of strings")
        return samples[0]
    if isinstance(obj.get("sample"), str):
        return obj["sample"]
    raise UserError(f"{where}: need 'samples' (a list) or 'sample' (a string)")


# --- aggregation --------------------------------------------------------------------------------

def aggregate(task: str, labels: list[Label], scores: dict[int, float], span: int = SPAN,
              n_lines: int | None = None) -> TaskScore:
    """The released aggregation over the scored lines (`scores`: line -> score in [0, 1]); `labels`
    are the usable data lines of `n_lines` (default: all of them usable)."""
    positions = max(lab.position_id for lab in labels) + 1
    sets = sorted({lab.set_id for lab in labels})
    cells: dict[tuple[int, int], list[float]] = defaultdict(list)
    for lab in labels:
        if lab.line in scores:
            cells[(lab.set_id, lab.position_id)].append(scores[lab.line])
    n_lines = len(labels) if n_lines is None else n_lines
    out = TaskScore(task, span, sets, positions, n_lines=n_lines, n_skipped=n_lines - len(scores),
                    n_rejected=n_lines - len(labels))
    for i in range(positions // span):
        first, last = span * i, span * i + span - 2  # range(span_start, span_start + span - 1)
        per_set = []
        for s in sets:
            accs = [x for p in range(first, last + 1) for x in cells.get((s, p), [])]
            if not accs:
                raise UserError(f"VaL {task}: set {s} has no scored item at positions {first}-{last}; "
                                "the released aggregation needs one in every span of every set")
            per_set.append(sum(accs) / len(accs))
            out.n += len(accs)
        mean = sum(per_set) / len(per_set)
        std = math.sqrt(sum((x - mean) ** 2 for x in per_set) / len(per_set))  # np.std: over sets, ddof 0
        out.spans.append({"positions": [first, last], "score": 100 * mean, "std": 100 * std})
    if not out.spans:
        raise UserError(f"VaL {task}: {positions} positions make no span of {span}")
    out.n_left_out = len(scores) - out.n
    return out


def score_task(task: str, data_dir: Path, pred_dir: Path, span: int = SPAN,
               rejects: RejectSink | None = None) -> TaskScore:
    name = FILES[task]
    labels, n_lines = read_labels(task, data_dir / f"{name}.jsonl", rejects)
    skip = read_skip_list(data_dir / f"{name}_skip_list.json")
    pred_path = pred_dir / f"sample_{name}.jsonl"
    preds = _json_lines(pred_path)
    if len(preds) != n_lines:
        raise UserError(f"{pred_path}: {len(preds)} lines for {n_lines} data lines; the predictions must be "
                        "line-aligned with the data")
    scores = {}
    for lab in labels:
        obj = preds[lab.line]
        if lab.line in skip:
            continue
        where = f"{pred_path}:{lab.line + 1}"
        try:
            scores[lab.line] = score_item(task, prediction_text(obj, where), lab)
        except ValueError as e:
            raise UserError(f"{data_dir / (name + '.jsonl')}:{lab.line + 1}: {e}") from None
    return aggregate(task, labels, scores, span, n_lines)


def score_val(data_dir: str | Path, pred_dir: str | Path, span: int = SPAN,
              rejects: RejectSink | None = None) -> dict[str, Any]:
    """Every task whose data file is in `data_dir` -> {"tasks": {task: {avg, gap, n, ...}}, "all": {avg, gap}}."""
    data_dir, pred_dir = Path(data_dir), Path(pred_dir)
    if span < 2:
        raise UserError("the VaL span must be >= 2 positions (each span's last position is left out)")
    tasks = [t for t, name in FILES.items() if (data_dir / f"{name}.jsonl").exists()]
    if not tasks:
        raise FileNotFoundError(f"no VaL data file ({', '.join(n + '.jsonl' for n in FILES.values())}) in {data_dir}")
    scored = {t: score_task(t, data_dir, pred_dir, span, rejects).to_dict() for t in tasks}
    n = len(scored)
    return {"tasks": scored,
            "all": {"avg": sum(t["avg"] for t in scored.values()) / n, "gap": sum(t["gap"] for t in scored.values()) / n},
            "data": str(data_dir), "predictions": str(pred_dir), "scale": "percent",
            "rule": "FILM VaLProbing/plot.py: each span reads positions start .. start + span - 2"}


# --- outputs ------------------------------------------------------------------------------------

def markdown(result: dict[str, Any], label: str) -> str:
    rows = ["| task | avg | gap | items |", "|---|---|---|---|"]
    for task, t in result["tasks"].items():
        rows.append(f"| {task} | {t['avg']:.1f} | {t['gap']:.1f} | {t['n']:,} |")
    a = result["all"]
    rows.append(f"| **all** | **{a['avg']:.1f}** | **{a['gap']:.1f}** | |")
    return (f"# VaL probing (FILM's released files): {label}\n\n" + "\n".join(rows) + "\n\nScored as FILM's "
            "`plot.py` scores (spans of positions, each span's last position left out); percent, "
            "avg = mean over spans, gap = max - min over spans.\n")


def val_figure(result: dict[str, Any], label: str):
    """The paper's figure: one panel per task, span mean with its standard deviation over sets."""
    from longcurate.eval.plots import mpl

    plt = mpl()
    tasks = list(result["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.4 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = result["tasks"][task]
        xs = list(range(len(t["spans"])))
        ax.errorbar(xs, [s["score"] for s in t["spans"]], yerr=[s["std"] for s in t["spans"]], marker="o",
                    capsize=4, label=f"{label} (avg {t['avg']:.1f}, gap {t['gap']:.1f})")
        ax.set_xticks(xs, [str(t["span"] * (i + 1)) for i in xs], rotation=45, fontsize="small")
        ax.set_xlabel(f"Relative Positions in {t['positions']} {UNITS[task]}")
        ax.set_ylabel("Performance (%)")
        ax.set_ylim(-5, 105)
        ax.set_title(TITLES[task])
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return fig


def write_val(result: dict[str, Any], output: str | Path, label: str) -> dict[str, Path]:
    """`output` (JSON), and beside it the Markdown table (.md) and the position plot (.png)."""
    from longcurate.eval.plots import save

    output = Path(output)
    write_json(output, result)
    md, png = output.with_suffix(".md"), output.with_suffix(".png")
    with atomic_open(md) as f:
        f.write(markdown(result, label))
    save(val_figure(result, label), png)
    return {"json": output, "markdown": md, "plot": png}


def val_inputs(data_dir: Path, pred_dir: Path) -> dict[str, list[str | None]]:
    """The digests of what scoring reads, per task with a data file: data, skip list, predictions."""
    return {task: [file_digest(data_dir / f"{name}.jsonl"), file_digest(data_dir / f"{name}_skip_list.json"),
                   file_digest(pred_dir / f"sample_{name}.jsonl")]
            for task, name in FILES.items() if (data_dir / f"{name}.jsonl").exists()}


def run_val(data_dir: str | Path, pred_dir: str | Path, output: str | Path, label: str, span: int = SPAN) -> dict[str, Any]:
    """Score FILM's files into `output` (with the table and the plot beside it) as a step; the result."""
    data_dir, pred_dir, output = Path(data_dir), Path(pred_dir), Path(output)
    written = {"markdown": output.with_suffix(".md"), "plot": output.with_suffix(".png")}
    settings = {"inputs": val_inputs(data_dir, pred_dir), "span": span, "label": label, "format": 1}

    def work(run: StepRun) -> dict[str, Any]:
        with Rejects(run.rejected) as rejects:
            result = score_val(data_dir, pred_dir, span=span, rejects=rejects)
        write_val(result, run.output, label)
        return {"all": result["all"], "n_rejected": rejects.total}

    run_step(StepSpec("the VaL scores", output, settings, also_outputs=tuple(written.values())), work)
    return {**(read_json_if_valid(output) or {}), "_written": {"json": output, **written}}


__all__ = ["FILES", "SPAN", "val_inputs", "run_val", "Label", "TaskScore", "document_score", "code_score", "database_score", "score_item",
           "read_labels", "read_skip_list", "prediction_text", "aggregate", "score_task", "score_val", "markdown",
           "val_figure", "write_val"]
