"""The synth stage as plain functions: corpus -> segments -> QA requests -> contexts -> samples files.

What each sample is comes from `plan.py` and how it is made from `generate.py`; this module writes the
files. Each samples file (the training samples and the held-out ones, `streams.py`) is a step of the
step runner (`core.runner`, `streams.stream_spec`): locked while it is written, appended as samples
are made, resumed by a later run, put in index order once nothing is pending, and marked done only
then. A run that leaves samples pending (the endpoint failed, a cap or the circuit breaker stopped
it) returns `complete: False` with the count and why, and the command exits "incomplete"; one that
made no sample at all from a non-empty corpus is an error that names the top reasons.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from longcurate.core.errors import UserError
from longcurate.core.holdout import keeps
from longcurate.core.jsonl import Rejects, ResumableWriter
from longcurate.core.runner import StepRun, run_step
from longcurate.synth.assemble import LengthModel
from longcurate.synth.corpus import read_corpus
from longcurate.synth.generate import DONE, GIVEN_UP, Outcome, generate
from longcurate.synth.order import sort_by_index
from longcurate.synth.plan import check_multihop, index_of, sample_id
from longcurate.synth.planting import plant_stream
from longcurate.synth.qa import PENDING, QABackend, backend_class
from longcurate.synth.segment import SegmentPool, build_pool
from longcurate.synth.streams import Stream, holdout_record, stream_spec, streams

if TYPE_CHECKING:
    from longcurate.synth.config import SynthRun

log = logging.getLogger("longcurate.synth")


class Tools:
    """The tokenizer and QA backend, made once for all streams and only when one needs writing; one
    backend, so its request and budget caps hold for the whole stage."""

    def __init__(self, cfg: SynthRun, tokenizer: Any = None):
        self.cfg = cfg
        self._tokenizer = tokenizer
        self._backend: QABackend | None = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from longcurate.core.models import load_tokenizer

            cfg = self.cfg
            self._tokenizer = load_tokenizer(cfg.model, allow_download=cfg.allow_download,
                                             trust_remote_code=cfg.trust_remote_code)
        return self._tokenizer

    @property
    def backend(self) -> QABackend:
        if self._backend is None:
            self._backend = backend_class(self.cfg.synth.backend).from_config(self.cfg)
        return self._backend


def run_synth(cfg: SynthRun, progress: bool = True, tokenizer: Any = None) -> dict:
    """Write the training samples and, when `synth.heldout_samples > 0`, the held-out samples (each
    resumable, each with its quarantine and completion marker).

    Returns the training samples' stats, with the held-out ones under "heldout"; a finished output
    (same settings and count) is left as is. An unfinished one has `complete: False`, `pending` and
    `why` (`core.runner.incomplete_parts` finds either).
    """
    tools = Tools(cfg, tokenizer)
    training, *others = streams(cfg)
    stats = write_stream(cfg, training, tools, progress)
    for stream in others:
        stats[stream.name] = write_stream(cfg, stream, tools, progress)
    return stats


def write_stream(cfg: SynthRun, stream: Stream, tools: Tools, progress: bool = True) -> dict:
    """One samples file through the step runner: skipped when finished with the same settings and
    count (and, with `synth.retry_failed`, nothing refused), else resumed (`stream_spec`)."""
    def work(run: StepRun) -> dict:
        with Rejects(run.rejected) as rejects:
            stats = _synthesize(cfg, stream, tools, rejects, progress)
        stats.update(output=str(run.output), num_samples=stream.count, holdout=holdout_record(cfg, stream))
        if stats["complete"]:
            stats["reordered"] = sort_by_index(run.output, index_of)
            planted = plant_stream(stream, tools.tokenizer)  # synth.planted: types dealt over the finished pool
            if planted is not None:
                stats["planted"] = planted
        print(format_stats(stats, rejects))
        if stats["complete"] and stats["in_file"] == 0:
            raise UserError(f"synth made no sample for {run.output} from {stats['corpus']['documents']} documents; "
                            f"top reasons: {_top_reasons(stats)}")
        if not stats["complete"]:
            stats["why"] = pending_why(stats)
        return stats

    return run_step(stream_spec(cfg, stream), work)


def _synthesize(cfg: SynthRun, stream: Stream, tools: Tools, rejects: Rejects, progress: bool) -> dict:
    """Corpus (the stream's part of it) -> segment pool -> samples appended to the stream's file; the
    run's stats. The split is applied as documents are read, so fillers come from that part too."""
    sc = stream.synth
    tokenizer = tools.tokenizer  # loaded before the clock starts: the timings are the corpus's and the samples'
    t0 = time.perf_counter()
    docs = read_corpus(sc.corpus, rejects, keep=lambda doc_id: keeps(doc_id, stream.side, cfg.holdout),
                       allow_download=cfg.allow_download)
    pool = build_pool(docs, tokenizer, sc.segment_tokens, sc.corpus.min_doc_tokens, rejects, progress=progress,
                      max_doc_tokens=sc.corpus.max_doc_tokens)
    corpus_rejects = rejects.total
    part = f" ({stream.side} part)" if stream.side else ""
    if not pool.segments:
        raise UserError(f"corpus {sc.corpus.path}{part}: no usable documents ({rejects.summary()})")
    check_multihop(sc, pool)
    log.info("corpus%s: %d documents, %d segments (%d documents rejected, %d cut to %s tokens)",
             part, len(pool.docs), len(pool.segments), corpus_rejects, pool.truncated, sc.corpus.max_doc_tokens)
    backend = tools.backend
    t1 = time.perf_counter()
    stats = _write(pool, LengthModel(tokenizer, sc.separator), backend, stream, rejects, progress)
    stats["timings_s"] = {"corpus": round(t1 - t0, 2), "samples": round(time.perf_counter() - t1, 2)}
    stats["corpus"] = {"side": stream.side, "documents": len(pool.docs), "segments": len(pool.segments),
                       "rejected_documents": corpus_rejects, "cut_to_max_doc_tokens": pool.truncated,
                       "max_doc_tokens": sc.corpus.max_doc_tokens}
    stats["rejected"] = dict(rejects.counts)
    stats["backend"] = backend.stats()
    return stats


@dataclass
class _Tally:
    """What one run did with the samples it tried."""

    kinds: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)  # reason class of failed draws
    pending: Counter = field(default_factory=Counter)  # reason class of pending samples
    refused: list[Outcome] = field(default_factory=list)
    written: int = 0
    given_up: int = 0
    filler_rejections: int = 0
    underfilled: int = 0

    def add(self, o: Outcome, writer: ResumableWriter, rejects: Rejects, prefix: str) -> None:
        self.failures.update(o.failures)
        self.filler_rejections += o.filler_rejections
        if o.status == DONE and o.sample is not None:
            writer.write(o.sample.to_dict())
            self.kinds[o.sample.kind] += 1
            self.written += 1
            self.underfilled += o.underfilled
        elif o.status == GIVEN_UP:
            rejects.add(o.error or "failed", record_id=sample_id(o.index, prefix))
            self.given_up += 1
        elif o.status == PENDING:
            self.pending[(o.error or "not tried").split(":")[0]] += 1
        else:
            self.refused.append(o)


def _write(pool: SegmentPool, lm: LengthModel, backend: QABackend, stream: Stream, rejects: Rejects,
           progress: bool) -> dict:
    n, prefix = stream.count, stream.prefix
    tally = _Tally()
    with ResumableWriter(stream.output, fsync_every=8) as writer:
        todo = [i for i in range(n) if sample_id(i, prefix) not in writer]
        bar = tqdm(total=n, initial=n - len(todo), desc=stream.name, unit="sample", disable=not progress,
                   mininterval=0.5)
        for o in generate(stream.synth, pool, lm, backend, stream.seed, todo, prefix):
            tally.add(o, writer, rejects, prefix)
            bar.update(1)
        bar.close()
        total = len(writer.done)
    if backend.exhausted:  # the backend stopped (cap, key, circuit breaker): refusals of this run may be an
        # outage's, not the items', so they are retried with the pending samples instead of recorded
        tally.pending.update((o.error or "").split(":")[0] for o in tally.refused)
        tally.refused = []
    for o in tally.refused:
        rejects.add(f"refused by the endpoint: {o.error}", record_id=sample_id(o.index, prefix))
    pending = sum(tally.pending.values())
    return {"written": tally.written, "already_done": n - len(todo), "in_file": total, "failed": tally.given_up,
            "refused": len(tally.refused), "pending": pending, "pending_reasons": dict(tally.pending.most_common()),
            "stop_reason": backend.stop_reason, "kinds": dict(sorted(tally.kinds.items())),
            "attempt_failures": dict(sorted(tally.failures.items())),
            "filler_ambiguity_rejections": tally.filler_rejections, "underfilled": tally.underfilled,
            "complete": pending == 0}


def _top_reasons(stats: dict, k: int = 3) -> str:
    reasons = Counter(stats.get("attempt_failures") or {})
    reasons.update({f"refused ({r})": v for r, v in (stats.get("rejected") or {}).items() if r.startswith("refused")})
    return ", ".join(f"{r}: {v}" for r, v in reasons.most_common(k)) or "none recorded"


def pending_why(stats: dict) -> str:
    """Why samples are pending: what stopped the backend, else the pending samples' reasons."""
    return stats.get("stop_reason") or ", ".join(f"{r}: {v}" for r, v in (stats.get("pending_reasons") or {}).items())


def format_stats(stats: dict, rejects: Rejects | None = None) -> str:
    c = stats["corpus"]
    lines = [f"synth: wrote {stats['written']} samples ({stats['already_done']} already done, "
             f"{stats['in_file']} in {stats['output']})",
             f"  kinds this run: {stats['kinds']}",
             f"  corpus{_part(stats)}: {c['documents']} documents, {c['segments']} segments, "
             f"{c['rejected_documents']} rejected, {c['cut_to_max_doc_tokens']} cut to max_doc_tokens "
             f"({c['max_doc_tokens']})",
             f"  fillers rejected for ambiguity (contain a key fragment): {stats['filler_ambiguity_rejections']}",
             f"  failed attempts (redrawn): {stats['attempt_failures'] or 0}",
             f"  contexts shorter than their target (too few usable fillers): {stats['underfilled']}",
             f"  samples given up: {stats['failed']}; refused by the endpoint: {stats['refused']} "
             f"(tried again with synth.retry_failed=true)"]
    if rejects is not None:
        lines.append("  " + rejects.summary())
    if not stats["complete"]:
        lines.append(f"  incomplete: {stats['pending']} pending, rerun to retry ({pending_why(stats)})")
    return "\n".join(lines)


def _part(stats: dict) -> str:
    h = stats.get("holdout") or {}
    return f" ({h['side']} part, holdout.fraction={h['fraction']})" if h.get("side") else ""


__all__ = ["Tools", "run_synth", "write_stream", "format_stats", "pending_why", "generate"]
