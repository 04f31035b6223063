"""`longcurate select run --dry-run`: what scoring the input will cost, before any scoring forward pass.

It reads and tokenizes the input exactly as scoring does (same reading settings, same prompts, same
rejects), counts the tokens of every pass the select stage runs, and prints them with no model
loaded. Then it times θ_B on the device at hand: a few forwards over synthetic rows at two lengths
(the calibration, seconds), fitted as seconds per token = c0 + c1 · row length (the second term is
attention's share, which grows with the row), and applied to every row of every pass. θ_A is timed
as θ_B (a separate θ_A checkpoint of the same family runs at about its speed). Nothing is written.

The passes (one row per sample unless said):
    θ_B prompts      the whole prompt and response; with CAM on, the same forward carries the attention probe
    θ_A windows      samples longer than `window` (shorter ones reuse θ_B's result when θ_A is θ_B windowed)
    IFD alone        the response after an empty prompt (Cherry's PPL(y))
    CAM segments     one row per kept segment of each CAM sample: segment + instruction + response
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from longcurate.core.jsonl import RecordedRejects
from longcurate.select.conversations import InputReport
from longcurate.select.inputs import PromptBuilder, prepare_all

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun

CALIBRATION_LENGTHS = (256, 2048)  # row lengths timed (the second capped by the longest row scored)
PASSES = ("θ_B prompts", "θ_A windows", "IFD alone", "CAM segments")


@dataclass
class Workload:
    """Rows per pass (their token lengths), and what the input held."""

    rows: dict[str, list[int]] = field(default_factory=dict)
    samples: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def tokens(self, name: str) -> int:
        return sum(self.rows.get(name, []))

    @property
    def total(self) -> int:
        return sum(sum(r) for r in self.rows.values())


def workload(cfg: SelectRun, builder: PromptBuilder) -> Workload:
    """The rows each pass would score, from the input tokenized as scoring tokenizes it."""
    from longcurate.select.scoring import parse_input
    from longcurate.select.steps import input_path, sample_reading, score_limit

    sel = cfg.select
    samples, rejects = parse_input(input_path(cfg), score_limit(cfg, "hmg"), None, cfg.allow_download,
                                   sample_reading(cfg))
    w = Workload(report=InputReport.of(samples).to_dict(), rows={name: [] for name in PASSES})
    reuse_b = sel.window and not sel.model_a and not sel.rope_scaling  # θ_A is θ_B windowed
    cam_ids = {s.id for _, s in samples[:score_limit(cfg, "cam")]}  # CAM: the first `cam_limit` parsed samples
    for _, _, p in prepare_all(builder, samples, rejects, str(input_path(cfg))):  # one sample in memory at a time
        n = len(p.input_ids)
        w.samples += 1
        w.rows["θ_B prompts"].append(n)
        if not (reuse_b and n <= sel.window):
            w.rows["θ_A windows"].append(len(builder.window_view(p, sel.window)[0]) if sel.window else n)
        w.rows["IFD alone"].append(len(builder.alone_view(p)[0]))
        if sel.cam and p.segment_spans and p.id in cam_ids:
            w.rows["CAM segments"] += [len(ids) for ids, _ in builder.segment_rows(p)]
    if not sel.cam:
        del w.rows["CAM segments"]
    w.rejected = len(rejects.rejections)
    w.reasons = _reasons(rejects)
    return w


def _reasons(rejects: RecordedRejects) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rejects.rejections:
        key = r.reason.split(":")[0]
        out[key] = out.get(key, 0) + 1
    return out


def seconds_per_token(engine: Any, length: int, attention: bool, vocab: int, segment_tokens: int,
                      repeats: int = 2) -> float:
    """Seconds per token of `engine` over a batch of synthetic rows of `length` tokens (the best of
    `repeats` timed calls, after the first call has paid for warm-up)."""
    import random

    from longcurate.core.engine import ScoreItem

    rng = random.Random(length)
    n = max(1, engine.batch_tokens // length)
    response = max(1, min(64, length // 4))
    spans = [(a, min(a + segment_tokens, length - response)) for a in range(1, length - response, segment_tokens)]
    items = [ScoreItem(f"calibration-{i}", [rng.randrange(vocab) for _ in range(length)], length - response,
                       spans if attention else []) for i in range(n)]
    call = engine.nll_and_attention if attention else engine.response_nll
    best = float("inf")
    for _ in range(repeats + 1):
        began = time.perf_counter()
        call(items)
        best = min(best, time.perf_counter() - began)
    return best / (n * length)


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(c0, c1) of seconds per token = c0 + c1 · length through the timed points (c1 >= 0)."""
    if len(points) < 2:
        return points[0][1], 0.0
    (l1, t1), (l2, t2) = points[0], points[-1]
    c1 = max(0.0, (t2 - t1) / (l2 - l1))
    return t1 - c1 * l1, c1


def estimate_seconds(rows: list[int], c: tuple[float, float]) -> float:
    return sum(n * (c[0] + c[1] * n) for n in rows)


def calibrate(cfg: SelectRun, longest: int) -> dict[str, Any]:
    """Load θ_B and time it: (c0, c1) for plain NLL rows and for rows with the attention probe."""
    from longcurate.select.engines import load_engines

    engine = load_engines(cfg, "cam", show_progress=False).engine_b
    engine.show_progress = False
    vocab = int(engine.model.config.vocab_size)
    lengths = sorted({min(n, max(longest, 16)) for n in CALIBRATION_LENGTHS})
    engine.response_nll([_warm_up_item(min(lengths), vocab)])  # first-call costs are not scoring's
    out: dict[str, Any] = {"device": str(engine.device), "dtype": str(next(engine.model.parameters()).dtype),
                           "lengths": lengths}
    for name, attention in (("nll", False), ("nll+attention", True)):
        out[name] = fit([(n, seconds_per_token(engine, n, attention, vocab, cfg.select.segment_tokens))
                         for n in lengths])
    return out


def _warm_up_item(length: int, vocab: int):
    from longcurate.core.engine import ScoreItem

    return ScoreItem("warm-up", [i % vocab for i in range(length)], length - 1)


def format_workload(w: Workload, source: str) -> str:
    lines = [f"select run --dry-run: {source}",
             f"  samples: {w.samples} to score, {w.rejected} rejected"
             + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(w.reasons.items()))})" if w.reasons else ""),
             f"  input: shapes {w.report.get('shapes')}, answers per conversation {w.report.get('answers')}, "
             f"split {w.report.get('split')}, derived {w.report.get('derived')}",
             "  tokens per pass:"]
    for name, rows in w.rows.items():
        lines.append(f"    {name:<14} {sum(rows):>14,} tokens in {len(rows):,} rows")
    lines.append(f"    {'total':<14} {w.total:>14,} tokens")
    return "\n".join(lines)


def estimates(w: Workload, cal: dict[str, Any], cam_probe: bool) -> dict[str, float]:
    """Seconds per pass: each row's length times the calibrated seconds per token at that length (the
    θ_B pass with the attention probe when CAM runs with it)."""
    return {name: estimate_seconds(rows, cal["nll+attention" if name == "θ_B prompts" and cam_probe else "nll"])
            for name, rows in w.rows.items()}


def format_estimate(seconds: dict[str, float], cal: dict[str, Any]) -> str:
    lines = [f"  scoring time on {cal['device']} ({cal['dtype']}; calibrated at {cal['lengths']} tokens per row):"]
    lines += [f"    {name:<14} {_clock(secs):>10}" for name, secs in seconds.items()]
    lines.append(f"    {'total':<14} {_clock(sum(seconds.values())):>10}  (an estimate; loading the models comes on top)")
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def dry_run(cfg: SelectRun) -> dict[str, Any]:
    """Print the sample count and tokens per pass (no model loaded), then the time estimate."""
    from longcurate.core.models import load_tokenizer
    from longcurate.select.engines import max_positions
    from longcurate.select.scoring import make_builder
    from longcurate.select.steps import input_path, model_b_name

    name_b = model_b_name(cfg)
    tok = load_tokenizer(name_b, cfg.allow_download, cfg.trust_remote_code)
    builder = make_builder(cfg, tok, max_positions(name_b, cfg.allow_download, cfg.trust_remote_code))
    w = workload(cfg, builder)
    print(format_workload(w, str(input_path(cfg))), flush=True)
    out: dict[str, Any] = {"samples": w.samples, "rejected": w.rejected, "tokens": {k: sum(v) for k, v in w.rows.items()},
                           "total_tokens": w.total}
    if not w.samples:
        return out
    cal = calibrate(cfg, max(max(r) for r in w.rows.values() if r))
    seconds = estimates(w, cal, cfg.select.cam)
    print(format_estimate(seconds, cal), flush=True)
    return {**out, "seconds": seconds, "total_seconds": sum(seconds.values()), "calibration": cal}


__all__ = ["dry_run", "workload", "Workload", "calibrate", "fit", "estimates", "estimate_seconds", "seconds_per_token"]
