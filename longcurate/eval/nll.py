"""The answer NLL: the teacher-forced negative log-likelihood of each held-out item's gold answer given
its long context. Beside generation accuracy (the paper's metric) it is cheap and low-variance: one
forward per item, a number for every item, no decoding.

Items: probes (the probe's answer given its context and instruction; position = where the key sits)
and held-out IN2 samples (`layout.heldout`: the response given context and instruction; position =
the centre of the gold evidence). The model interface's `loglikelihood` scores them (`model.py`): for
a local model the token sequence is the prompt exactly as generation sends it (`render.prompt_ids`: the
evaluated model's chat template over the user prompt, with the generation prompt), then the answer's
own tokens as the assistant turn (no end-of-turn marker), and `core.engine.ScoringEngine.response_nll`
computes the loss over the answer tokens only (what select scores with).

Outputs per model (one step, `nll_task`): `nll/items.jsonl`, one line per item sorted by id, {id,
source, task, position, nll (mean nats per answer token), n_tokens}, and `nll/results.json`, the means
with 95% bootstrap intervals by source, by task and by position bucket. An item that cannot be scored
(no answer tokens, longer than the model's context, a request that failed) is listed there and leaves
the task incomplete.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import RejectSink, Rejects, done_marker, file_digest, write_json, write_jsonl
from longcurate.core.prompts import user_prompt
from longcurate.core.reader import read_parsed, source_digest
from longcurate.core.records import Sample
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.eval.config import EvalRunConfig
from longcurate.eval.items import ensure_probes
from longcurate.eval.model import EvalModel, LLRequest, ModelRun, check_order, task_stats
from longcurate.eval.predict import Failed
from longcurate.eval.probes import Probe
from longcurate.eval.scoring import interval

log = logging.getLogger("longcurate.eval")


@dataclass
class AnswerItem:
    """One gold answer to score: what is asked (the user prompt), the answer, and where its evidence sits."""

    id: str
    source: str  # probe | heldout
    task: str  # the probe task, or the held-out sample's kind
    position: float | None  # 0 = the start of the context, 1 = its end (None: unknown)
    prompt: str
    answer: str


def probe_items(path: str | Path, rejects: RejectSink, limit: int | None = None) -> list[AnswerItem]:
    """The probe file's items: the answer given the probe's context and instruction."""
    out = []
    for _, p in read_parsed(path, Probe.from_dict, rejects):
        out.append(AnswerItem(p.id, "probe", p.task, p.key_token_fraction, user_prompt(p.context, p.instruction),
                              p.answer))
        if limit is not None and len(out) >= limit:
            break
    return out


def evidence_position(s: Sample) -> float | None:
    """The centre of the sample's gold evidence as a fraction of its context (mean over the spans of a
    multi-hop sample); None without gold spans."""
    if not s.gold or not s.context:
        return None
    centres = [(g.char_start + g.char_end) / 2 for g in s.gold]
    return round(sum(centres) / len(centres) / len(s.context), 6)


def heldout_items(path: str | Path, rejects: RejectSink, limit: int | None = None) -> list[AnswerItem]:
    """The held-out samples: the response given context and instruction."""
    out = []
    for _, s in read_parsed(path, Sample.from_dict, rejects):
        out.append(AnswerItem(s.id, "heldout", s.kind, evidence_position(s), user_prompt(s.context, s.instruction),
                              s.response))
        if limit is not None and len(out) >= limit:
            break
    return out


def score_answers(items: list[AnswerItem], model: EvalModel) -> tuple[list[dict[str, Any]], list[Failed]]:
    """Per-item records (sorted by id) and the items that could not be scored, by the model's
    `loglikelihood` (an empty answer, a sequence longer than its context, a failed request)."""
    requests = [LLRequest(it.id, it.prompt, it.answer) for it in items]
    results = model.loglikelihood(requests)
    check_order(requests, results, "loglikelihood")
    meta = {it.id: it for it in items}
    records = [{"id": r.id, "source": meta[r.id].source, "task": meta[r.id].task, "position": meta[r.id].position,
                "nll": r.nll, "n_tokens": r.n_tokens} for r in results if r.ok]
    failures = [Failed(r.id, r.error, "prompt") for r in results if not r.ok]
    return sorted(records, key=lambda r: r["id"]), failures


def bucket_of(position: float | None, buckets: int) -> int | None:
    """Which of `buckets` equal-width buckets over [0, 1] a relative position falls in (None: unknown)."""
    if position is None:
        return None
    return min(max(int(position * buckets), 0), buckets - 1)


def aggregate_nll(records: list[dict[str, Any]], buckets: int) -> dict[str, Any]:
    """Means with 95% bootstrap intervals: over all items, by source, by source/task, and by position
    bucket within each source (buckets of equal width over [0, 1])."""
    by_source: dict[str, list[float]] = defaultdict(list)
    by_task: dict[str, list[float]] = defaultdict(list)
    by_pos: dict[str, list[list[float]]] = {}
    for r in records:
        by_source[r["source"]].append(r["nll"])
        by_task[f"{r['source']}/{r['task']}"].append(r["nll"])
        if r["position"] is not None:
            by_pos.setdefault(r["source"], [[] for _ in range(buckets)])[bucket_of(r["position"], buckets)].append(r["nll"])
    return {
        "buckets": buckets,
        "all": interval(r["nll"] for r in records),
        "by_source": {s: interval(v) for s, v in sorted(by_source.items())},
        "by_task": {t: interval(v) for t, v in sorted(by_task.items())},
        "by_position": {s: [{"bucket": [round(b / buckets, 6), round((b + 1) / buckets, 6)], **interval(v)}
                            for b, v in enumerate(cells)] for s, cells in sorted(by_pos.items())},
    }


# --- the task (one step per model) ---------------------------------------------------------------

def nll_step(cfg: EvalRunConfig, label: str, model: str) -> StepSpec:
    """`<eval_dir>/<label>/nll/items.jsonl` (+ results.json), policy `redo`: one forward per item, cheap
    to redo, and a model folder retrained in place must be scored again. Settings: the model (its name,
    and the digest of the trained model's completion marker when there is one), the digests of the item
    files, the limit, and what decides the numbers (backend, template, dtype, buckets)."""
    layout = cfg.layout()
    g = cfg.eval.generate
    heldout = layout.heldout if cfg.eval.nll.heldout else None
    files = layout.evals.model(label)
    settings = {"model": model, "model_marker": file_digest(done_marker(Path(model))), "probes": source_digest(layout.probes),
                "heldout": source_digest(heldout) if heldout is not None else None, "limit": cfg.eval.limit,
                "backend": g.backend, "template": g.template, "dtype": g.dtype, "buckets": cfg.eval.nll.buckets,
                "format": 1}
    return StepSpec(f"the answer NLL of {label}", files.nll_items, settings, also_outputs=(files.results("nll"),))


def nll_task(run: ModelRun) -> dict[str, Any]:
    """Score the probes (and held-out samples, when synth wrote them) for one model, unless its
    results are complete with the same settings; the model is loaded only when there is something to
    score. Returns the stats its completion marker records."""
    cfg = run.cfg
    layout = cfg.layout()
    ensure_probes(cfg)

    def work(step: StepRun) -> dict[str, Any]:
        with Rejects(step.rejected) as rejects:
            items = probe_items(layout.probes, rejects, cfg.eval.limit)
            if cfg.eval.nll.heldout and layout.heldout.exists():
                items += heldout_items(layout.heldout, rejects, cfg.eval.limit)
            elif cfg.eval.nll.heldout:
                log.info("eval nll: no held-out samples at %s (synth.heldout_samples = 0); probes only", layout.heldout)
        records, failures = score_answers(items, run.backend)
        aggregate = aggregate_nll(records, cfg.eval.nll.buckets)
        write_jsonl(step.output, records)
        write_json(run.files.results("nll"), {
            "kind": "nll", "model": run.model, "unit": "mean nats per answer token", "n_items": len(items),
            "n_scored": len(records), "n_failed": len(failures), "n_rejected": rejects.total,
            "failures": [f.to_dict() for f in failures], **aggregate})
        summary = {"all": aggregate["all"], "by_source": aggregate["by_source"], "n_scored": len(records),
                   "n_failed": len(failures)}
        return task_stats(summary, failed=len(failures))

    return run_step(nll_step(cfg, run.label, run.model), work)


__all__ = ["AnswerItem", "probe_items", "heldout_items", "evidence_position", "score_answers", "bucket_of",
           "aggregate_nll", "nll_step", "nll_task"]
