"""The synth stage as plain functions: corpus -> segments -> QA requests -> contexts -> samples.

Every sample depends only on (seed, index): its kind and target length come from low-discrepancy
(Weyl) sequences in the index, which keeps the length histogram flat and the short share exact,
and every other draw comes from a generator seeded by (seed, index, attempt). A resumed run
therefore writes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from tqdm import tqdm

from longcurate.core.completion import Step, settings_file
from longcurate.core.config import to_dict
from longcurate.core.errors import SettingsChanged, UserError
from longcurate.core.jsonl import RejectSink, Rejects, ResumableWriter, rejected_path
from longcurate.core.prompts import messages_for
from longcurate.core.records import Sample
from longcurate.synth.assemble import Assembled, AssemblyError, LengthModel, assemble_long, assemble_short
from longcurate.synth.config import SynthConfig
from longcurate.synth.corpus import corpus_digest, read_corpus
from longcurate.synth.qa import QABackend, QARequest, QAResult, SegmentText, backend_class
from longcurate.synth.segment import SegmentPool, build_pool

if TYPE_CHECKING:
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.synth")

_ALPHA_KIND = (math.sqrt(5) - 1) / 2  # golden ratio: the most even Weyl sequence
_ALPHA_LEN = math.sqrt(2) - 1  # independent of the first (1, phi, sqrt 2 are rationally independent)


def sample_id(index: int) -> str:
    return f"in2-{index:06d}"


def _unit(seed: int, name: str) -> float:
    h = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2 ** 64


@dataclass(frozen=True)
class Plan:
    """What sample `index` will be, fixed before any QA is generated."""

    index: int
    kind: str  # fine | multihop | short
    target: int  # target token length (long kinds)


def plan(cfg: SynthConfig, seed: int, index: int) -> Plan:
    u_kind = (_unit(seed, "kind") + index * _ALPHA_KIND) % 1.0
    u_len = (_unit(seed, "length") + index * _ALPHA_LEN) % 1.0
    if u_kind < cfg.short_fraction:
        kind = "short"
    elif u_kind < cfg.short_fraction + (1 - cfg.short_fraction) * cfg.multihop_fraction:
        kind = "multihop"
    else:
        kind = "fine"
    target = cfg.min_tokens + int(u_len * (cfg.max_tokens - cfg.min_tokens + 1))
    return Plan(index, kind, min(target, cfg.max_tokens))


def _qtypes(cfg: SynthConfig, backend: str, kind: str) -> list[str]:
    if backend != "template":
        return [f"{backend}:{'multihop' if kind == 'multihop' else 'fine'}"]
    types = cfg.multihop_types if kind == "multihop" else cfg.fine_types
    if not types:
        raise UserError(f"synth.{'multihop' if kind == 'multihop' else 'fine'}_types is empty")
    return list(types)


def make_request(cfg: SynthConfig, backend: str, pool: SegmentPool, seed: int, p: Plan, attempt: int
                 ) -> tuple[QARequest, list[int]]:
    """The QA request for one attempt at sample `p.index`, and its gold segments (pool indices)."""
    rng = random.Random(f"{seed}:{p.index}:{attempt}:request")
    qtype = rng.choice(_qtypes(cfg, backend, p.kind))
    n = len(pool)
    if p.kind == "multihop":
        k = cfg.multihop_segments
        if len(pool.docs) < k + 1:
            raise UserError(f"multi-hop questions need more than {k} documents; the corpus has {len(pool.docs)}")
        gold: list[int] = []
        docs: set[int] = set()
        while len(gold) < k:
            j = rng.randrange(n)
            if pool.segments[j].doc not in docs:
                gold.append(j)
                docs.add(pool.segments[j].doc)
    else:
        gold = [rng.randrange(n)]
    segs = tuple(SegmentText(doc_id=pool.segments[g].doc_id, title=pool.segments[g].title,
                             index=pool.segments[g].index, text=pool.segments[g].text) for g in gold)
    req = QARequest(request_id=f"{sample_id(p.index)}-a{attempt}", kind="multihop" if p.kind == "multihop" else "fine",
                    qtype=qtype, segments=segs, seed=seed)
    return req, gold


@dataclass
class Outcome:
    index: int
    sample: Sample | None = None
    error: str | None = None  # set when every attempt failed
    attempts: int = 0
    filler_rejections: int = 0
    failures: Counter = field(default_factory=Counter)  # reason class -> count, over failed attempts
    stopped: bool = False  # not finished because the backend hit a hard cap (not a bad item)
    underfilled: bool = False  # the context is shorter than its target: too few usable fillers


def build_sample(pool: SegmentPool, lm: LengthModel, p: Plan, req: QARequest, gold: list[int], res: QAResult) -> tuple[Sample, Assembled]:
    """Place an answered QA pair in its context and make the record; raises AssemblyError."""
    rng = random.Random(f"{req.seed}:{req.request_id}:assemble")
    q, a = res.question or "", res.answer or ""
    if p.kind == "short":
        asm = assemble_short(pool, gold[0], q, a, res.key_fragments, lm)
    else:
        asm = assemble_long(pool, gold, q, a, res.key_fragments, p.target, rng, lm)
    segs = [pool.segments[g] for g in gold]
    source = {"doc_ids": [s.doc_id for s in segs], "doc_segments": [s.index for s in segs],
              "generator": res.generator, "key_fragments": list(res.key_fragments)}
    if p.kind != "short":
        source["target_length"] = p.target
    sample = Sample(id=sample_id(p.index), kind=p.kind, context=asm.context, instruction=q, response=a,
                    messages=messages_for(asm.context, q, a), gold=asm.gold, num_segments=asm.num_segments,
                    length=asm.length, source=source)
    return sample, asm


def generate(cfg: SynthConfig, pool: SegmentPool, lm: LengthModel, backend: QABackend, seed: int,
             indices: Iterable[int]) -> Iterator[Outcome]:
    """Outcomes in index order, `cfg.batch_size` QA requests at a time."""
    indices = list(indices)
    for start in range(0, len(indices), max(1, cfg.batch_size)):
        chunk = [plan(cfg, seed, i) for i in indices[start:start + cfg.batch_size]]
        outcomes = {p.index: Outcome(p.index) for p in chunk}
        pending = list(chunk)
        for attempt in range(cfg.max_attempts):
            if not pending:
                break
            reqs = [make_request(cfg, backend.name, pool, seed, p, attempt) for p in pending]
            results = backend.generate([r for r, _ in reqs])
            if len(results) != len(reqs):
                raise RuntimeError(f"QA backend returned {len(results)} results for {len(reqs)} requests")
            still = []
            for p, (req, gold), res in zip(pending, reqs, results):
                out = outcomes[p.index]
                out.attempts = attempt + 1
                if not res.ok:
                    reason = res.error or "empty question or answer"
                    out.failures["qa: " + reason.split(":")[0]] += 1
                    out.error = f"qa failed: {reason}"
                    still.append(p)
                    continue
                try:
                    out.sample, asm = build_sample(pool, lm, p, req, gold, res)
                    out.filler_rejections += asm.filler_rejections
                    out.underfilled = asm.underfilled
                    out.error = None
                except AssemblyError as e:
                    out.failures[str(e).split(":")[0]] += 1
                    out.error = str(e)
                    still.append(p)
            pending = still
            if backend.exhausted:  # the backend hit its request or budget cap
                for p in pending:
                    outcomes[p.index].stopped = True
                break
        for p in chunk:
            out = outcomes[p.index]
            if out.sample is None and out.error is None:
                out.error = "not generated"
            yield out
        if backend.exhausted:
            return


def synth_settings(cfg: RunConfig) -> dict[str, Any]:
    """What decides the samples' content (not how many, nor how requests are sent and capped): sample
    `i` depends only on these and `i`, so a run with a larger `num_samples` extends a finished file."""
    s = to_dict(cfg.synth)
    for k in ("output", "num_samples", "limit", "batch_size"):
        s.pop(k, None)
    for k in ("max_concurrency", "max_retries", "timeout_s", "backoff_initial_s", "backoff_max_s", "max_requests",
              "budget_usd", "cache_dir", "api_key_env", "price_input_per_1m", "price_output_per_1m"):
        s.get("openai", {}).pop(k, None)  # how requests are sent and capped, not what they return
    return {**_dotted("synth", s), "seed": cfg.seed, "model": cfg.model,
            "corpus_digest": corpus_digest(cfg.synth.corpus)}


def _dotted(prefix: str, tree: dict[str, Any]) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"prefix.a.b": 1}: a refused change then names the exact config key."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(_dotted(f"{prefix}.{k}", v) if isinstance(v, dict) else {f"{prefix}.{k}": v})
    return out


def samples_step(cfg: RunConfig) -> Step:
    """The samples file. Policy `refuse`: a file begun or finished with other settings is kept and the
    run stops naming the keys (the samples may have cost API money); a partial file with the same
    settings is resumed. Settings: `synth_settings`. A finished file counts as done when its marker
    records the number of samples asked for."""
    return Step(cfg.layout().samples, synth_settings(cfg), on_change="refuse", name="synth")


def run_synth(cfg: RunConfig, progress: bool = True, tokenizer: Any = None) -> dict:
    """Write `cfg.synth.num_samples` samples (resumable), the quarantine and a completion marker.

    Returns the stats; a finished output (same settings and count) is left as is.
    """
    sc: SynthConfig = cfg.synth
    n = sc.num_samples if sc.limit is None else min(sc.num_samples, sc.limit)
    _validate(sc)
    step = samples_step(cfg)
    out = step.output
    done = step.stats() if step.is_complete() else {}
    if done.get("num_samples") == n:
        log.info("%s is complete (%d samples); nothing to do", out, n)
        return {**done, "skipped": True}
    _begin(step)
    if tokenizer is None:
        from longcurate.core.models import load_tokenizer

        tokenizer = load_tokenizer(cfg.model, allow_download=cfg.allow_download,
                                   trust_remote_code=cfg.trust_remote_code)
    with Rejects(rejected_path(out)) as rejects:
        stats = _synthesize(cfg, tokenizer, n, out, rejects, progress)
    stats.update(output=str(out), num_samples=n)
    if stats["complete"]:
        step.finish(stats)
    print(format_stats(stats, rejects))
    return stats


def _begin(step: Step) -> None:
    """Record the settings before the first sample is written; a file whose settings were never
    recorded (made by hand or by an older version) is refused rather than mixed into."""
    out = step.output
    if out.exists() and out.stat().st_size and not settings_file(out).exists():
        raise SettingsChanged(f"{out} exists but records no settings ({settings_file(out).name} is missing); "
                              f"use another output (or output_dir), or delete it to redo synth")
    step.begin()
    step.unfinish()  # the file is about to change (resumed, or extended to more samples)


def _synthesize(cfg: RunConfig, tokenizer: Any, n: int, out: Path, rejects: Rejects,
                progress: bool) -> dict:
    """Corpus -> segment pool -> samples appended to `out`; the run's stats."""
    sc = cfg.synth
    t0 = time.perf_counter()
    pool = build_pool(read_corpus(sc.corpus, rejects), tokenizer, sc.segment_tokens,
                      sc.corpus.min_doc_tokens, rejects, progress=progress)
    corpus_rejects = rejects.total
    if not pool.segments:
        raise UserError(f"corpus {sc.corpus.path}: no usable documents ({rejects.summary()})")
    log.info("corpus: %d documents, %d segments (%d documents rejected)",
             len(pool.docs), len(pool.segments), corpus_rejects)
    backend = backend_class(sc.backend).from_config(cfg)
    lm = LengthModel(tokenizer, sc.separator)
    t1 = time.perf_counter()
    stats = _write(sc, pool, lm, backend, cfg.seed, n, out, rejects, progress)
    stats["timings_s"] = {"corpus": round(t1 - t0, 2), "samples": round(time.perf_counter() - t1, 2)}
    stats["corpus"] = {"documents": len(pool.docs), "segments": len(pool.segments),
                       "rejected_documents": corpus_rejects}
    stats["rejected"] = dict(rejects.counts)
    stats["backend"] = backend.stats()
    return stats


def _write(sc: SynthConfig, pool: SegmentPool, lm: LengthModel, backend: QABackend, seed: int, n: int, out: Path,
           rejects: RejectSink, progress: bool) -> dict:
    kinds: Counter = Counter()
    failures: Counter = Counter()
    written = failed = stopped = filler_rejections = underfilled = 0
    with ResumableWriter(out, fsync_every=8) as writer:
        todo = [i for i in range(n) if sample_id(i) not in writer]
        skipped = n - len(todo)
        bar = tqdm(total=n, initial=skipped, desc="synth", unit="sample", disable=not progress, mininterval=0.5)
        for o in generate(sc, pool, lm, backend, seed, todo):
            failures.update(o.failures)
            filler_rejections += o.filler_rejections
            if o.stopped or stopped:
                # Left for a later run, not quarantined; nothing after it is written either, so the
                # file stays in index order and a resumed run equals an uninterrupted one.
                stopped += 1
            elif o.sample is not None:
                writer.write(o.sample.to_dict())
                kinds[o.sample.kind] += 1
                written += 1
                underfilled += o.underfilled
            else:
                rejects.add(o.error or "failed", record_id=sample_id(o.index))
                failed += 1
            bar.update(1)
        bar.close()
        total = len(writer.done)
    complete = not backend.exhausted and not stopped and written + failed == len(todo)
    return {"written": written, "already_done": skipped, "in_file": total, "failed": failed, "stopped": stopped,
            "kinds": dict(sorted(kinds.items())), "attempt_failures": dict(sorted(failures.items())),
            "filler_ambiguity_rejections": filler_rejections, "underfilled": underfilled, "complete": complete}


def _validate(sc: SynthConfig) -> None:
    if sc.min_tokens > sc.max_tokens:
        raise UserError(f"synth.min_tokens ({sc.min_tokens}) > synth.max_tokens ({sc.max_tokens})")
    if sc.segment_tokens < 8:
        raise UserError("synth.segment_tokens must be >= 8")
    for name in ("short_fraction", "multihop_fraction"):
        v = getattr(sc, name)
        if not 0 <= v <= 1:
            raise UserError(f"synth.{name} must be in [0, 1], got {v}")
    if sc.multihop_segments < 2:
        raise UserError("synth.multihop_segments must be >= 2")
    if sc.backend == "template":
        from longcurate.synth.template_qa import is_multihop, known_types

        for t in sc.fine_types + sc.multihop_types:
            if t not in known_types():
                raise UserError(f"unknown template question type {t!r}; known: {', '.join(known_types())}")
        for t in sc.fine_types:
            if is_multihop(t):
                raise UserError(f"synth.fine_types: {t!r} is a multi-hop type")
        for t in sc.multihop_types:
            if not is_multihop(t):
                raise UserError(f"synth.multihop_types: {t!r} is a fine-grained type")


def format_stats(stats: dict, rejects: Rejects | None = None) -> str:
    lines = [f"synth: wrote {stats['written']} samples ({stats['already_done']} already done, "
             f"{stats['in_file']} in {stats['output']})",
             f"  kinds this run: {stats['kinds']}",
             f"  corpus: {stats['corpus']['documents']} documents, {stats['corpus']['segments']} segments, "
             f"{stats['corpus']['rejected_documents']} rejected",
             f"  fillers rejected for ambiguity (contain a key fragment): {stats['filler_ambiguity_rejections']}",
             f"  failed attempts (redrawn): {stats['attempt_failures'] or 0}",
             f"  contexts shorter than their target (too few usable fillers): {stats['underfilled']}",
             f"  samples given up: {stats['failed']}"]
    if rejects is not None:
        lines.append("  " + rejects.summary())
    if not stats.get("complete", True):
        lines.append("  INCOMPLETE: the QA backend stopped (request or budget cap); re-run to continue")
    return "\n".join(lines)
