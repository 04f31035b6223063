"""gpu_check.json and gpu_check.md: every part's status and figures, the targets of issue 13 judged
from them, and the log tails of what failed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

TARGETS = (
    ("scoring engine >= 3x the per-sample reference at 16-32K tokens", "scoring", "speedup", 3.0),
    ("scoring engine >= 40% MFU", "scoring", "engine.mfu", 0.40),
    ("packed training >= 35% MFU at 16K tokens per row", "training", "modes.packed.mfu", 0.35),
    ("CAM attention at 32K within the model's weights + 4 GiB", "cam", "within_target", True),
)


def lookup(parts: dict, part: str, path: str) -> Any:
    value: Any = parts.get(part, {}).get("result", {})
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def judge_targets(parts: dict, on_gpu: bool) -> list[dict]:
    out = []
    for text, part, path, want in TARGETS:
        got = lookup(parts, part, path) if on_gpu else None  # a CPU run's figures are no GPU figures
        if not on_gpu:
            met = None
        elif isinstance(want, bool):
            met = got is want
        else:
            met = got is not None and got >= want
        out.append({"target": text, "measured": got, "met": met})
    return out


def cross_checks(parts: dict) -> dict:
    """FSDP and DeepSpeed start from the same weights and batch: their first-step losses must agree."""
    a, b = lookup(parts, "fsdp", "first_loss"), lookup(parts, "deepspeed", "first_loss")
    if a is None or b is None:
        return {}
    return {"fsdp_vs_deepspeed_first_loss_rel_diff": abs(a - b) / max(abs(a), 1e-12)}


def write_json(path: Path, report: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), value)]


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and len(value) > 12:
        return f"{value[:12]} ... ({len(value)} values)"
    return str(value).replace("|", "/").replace("\n", " ")


def part_section(name: str, entry: dict) -> list[str]:
    lines = [f"## {name}: {entry['status']}", "", entry.get("what", ""), ""]
    if entry.get("reason"):
        lines += [f"Skipped: {entry['reason']}", ""]
    figures = flatten(entry.get("result", {}))
    if figures:
        lines += ["| figure | value |", "|---|---|"] + [f"| {k} | {fmt(v)} |" for k, v in figures]
        lines.append("")
    if entry.get("error"):
        lines += [f"Error: `{fmt(entry['error'])}`", ""]
    for key in ("traceback", "log_tail"):
        if entry.get(key):
            lines += [f"{key.replace('_', ' ')}:", "", "```", entry[key], "```", ""]
    return lines


def render_markdown(report: dict) -> str:
    meta, parts = report["meta"], report["parts"]
    lines = ["# GPU check", "",
             f"Device: {meta.get('device_name', '?')}; torch {meta.get('torch')}; transformers "
             f"{meta.get('transformers')}; mode: {'smoke (tiny sizes)' if meta.get('smoke') else 'full'}; "
             f"{meta.get('seconds', '?')} s in all (budget {meta.get('budget_s')} s); {meta.get('started')}.", ""]
    if not meta.get("on_gpu"):
        lines += ["No GPU figure: this run had no CUDA device, so it checks that every part runs, not how fast.", ""]
    lines += ["| part | status | seconds | limit |", "|---|---|---|---|"]
    lines += [f"| {n} | {e['status']} | {e.get('seconds', '-')} | {e.get('limit_s', '-')} |" for n, e in parts.items()]
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t['target']} | {'-' if t['measured'] is None else fmt(t['measured'])} | "
              f"{'n/a (no GPU)' if not meta.get('on_gpu') else t['met']} |"
              for t in report.get("targets", [])]
    for k, v in report.get("cross_checks", {}).items():
        lines += ["", f"Cross-check: {k} = {fmt(v)}"]
    lines.append("")
    if report.get("wheels"):
        lines += [f"Wheels: {fmt(report['wheels'])}", ""]
    for name, entry in parts.items():
        lines += part_section(name, entry)
    return "\n".join(lines) + "\n"
