"""One scoring job (HMG, CAM or both) for one shard, top to bottom: read, quarantine, tokenize, load
models, score the shard's samples into its part files, finish them, merge when this process may.

    longcurate select score hmg --input samples.jsonl --output scores/hmg.jsonl
    torchrun --nproc_per_node 8 -m longcurate select score hmg --input ...   # one part per rank, rank 0 merges

The select stage scores HMG and CAM together (`run_scores`): one tokenization and one θ_B forward per
sample serve both, written to the same part files as the two separate commands. Each part file and
each merge is a step of the step runner (`core.runner`); the steps and their policies are in
`steps.py`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from longcurate.core.errors import SettingsChanged, UserError
from longcurate.core.jsonl import RecordedRejects, Rejects, RejectSink
from longcurate.core.reader import source_exists
from longcurate.core.records import Sample
from longcurate.core.runner import StepRun, run_step, run_steps, step_state
from longcurate.select.conversations import InputReport, SampleReading
from longcurate.select.engines import lazy, load_engines, max_positions
from longcurate.select.inputs import Prepared, PromptBuilder, load_samples, prepare_all
from longcurate.select.merge import merge_parts
from longcurate.select.rejects import ShardRejects
from longcurate.select.shard import ChunkSizer, ShardSpec, barrier_and_merge, run_joint_parts, run_parts, shard_spec
from longcurate.select.steps import ScoreSteps, input_path, model_b_name, sample_reading, score_limit

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun

log = logging.getLogger("longcurate.select")

# (input, limit) -> the parsed samples and their parse rejects: one parse serves every kind and the merge.
Parsed = dict[tuple[str, int | None], tuple[list[tuple[int, Sample]], RecordedRejects]]


def parse_input(inp: Path, limit: int | None, parsed: Parsed | None = None, allow_download: bool = False,
                reading: SampleReading | None = None) -> tuple[list[tuple[int, Sample]], RecordedRejects]:
    """(samples, parse rejects) of the input, parsed once per (path, limit) through `parsed` when given."""
    key = (str(inp), limit)
    if parsed is not None and key in parsed:
        return parsed[key]
    recorded = RecordedRejects()
    result = (load_samples(inp, recorded, limit=limit, allow_download=allow_download, reading=reading), recorded)
    if parsed is not None:
        parsed[key] = result
    return result


def parsed_samples(cfg: SelectRun, kind: str, parsed: Parsed | None = None
                   ) -> tuple[list[tuple[int, Sample]], RecordedRejects]:
    """`parse_input` of the config's input with `kind`'s limit."""
    return parse_input(input_path(cfg), score_limit(cfg, kind), parsed, cfg.allow_download, sample_reading(cfg))


def expected_ids(cfg: SelectRun, kind: str, parsed: Parsed | None = None) -> list[str]:
    """Every id a complete run must have scored or rejected (all shards together)."""
    samples, _ = parsed_samples(cfg, kind, parsed)
    return [s.id for _, s in samples]


def merge_scores(cfg: SelectRun, steps: ScoreSteps, count: int, parsed: Parsed | None = None,
                 again: bool = False) -> dict[str, Any]:
    """Merge `count` finished part files into the score file; HMG's normalisation and CAM's importance
    temperature are applied here, over the whole dataset. `again`: even when it is complete."""
    from longcurate.select.cam import finalize_cam
    from longcurate.select.hmg import finalize_hmg

    def finalize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if steps.kind == "hmg":
            return finalize_hmg(records, steps.hmg_scale)
        return finalize_cam(records, steps.importance_temperature)

    samples, _ = parsed_samples(cfg, steps.kind, parsed)
    return run_step(steps.merged(again), lambda run: merge_parts(
        run.output, steps.parts(count), [s.id for _, s in samples], finalize, source=str(input_path(cfg)),
        lines={s.id: line for line, s in samples}))


def chunk_sizer(cfg: SelectRun) -> ChunkSizer:
    """Chunks of `select.chunk_size` samples, or (null) of about `select.chunk_seconds` of work."""
    return ChunkSizer(cfg.select.chunk_size, cfg.select.chunk_seconds)


def make_builder(cfg: SelectRun, tokenizer: Any, max_length: int) -> PromptBuilder:
    sel = cfg.select
    return PromptBuilder(tokenizer, prompt_format=sel.prompt_format, max_length=sel.max_length or max_length,
                         overlong=sel.overlong, segment_tokens=sel.segment_tokens,
                         max_segments=sel.max_segments, seed=cfg.seed)


def run_score(cfg: SelectRun, kind: str, show_progress: bool = True) -> dict[str, Any]:
    """Score this shard and, when this process may, merge. Returns stats."""
    return run_scores(cfg, [kind], show_progress)[kind]


def run_scores(cfg: SelectRun, kinds: list[str], show_progress: bool = True) -> dict[str, dict[str, Any]]:
    """Score this shard for each kind, then merge each when this process may; stats per kind.

    When HMG and CAM both still have work here, they run together (`_score_joint`): every sample is
    tokenized once and its full prompt goes through θ_B once, giving HMG's θ_B NLL and CAM's
    segment attention from the same forward. The part files, resume and merge are those of the
    separate commands. This shard's part files are locked while they are scored, each merged file
    while it is merged (`core.runner.run_steps`): a second run on them stops at once."""
    if len(set(kinds)) != len(kinds):
        raise UserError(f"score kinds repeated: {kinds}")
    if len(kinds) > 1 and cfg.select.output:
        raise UserError("select.output names one command's output; leave it empty to score several kinds")
    spec = shard_spec(cfg.select.num_shards, cfg.select.shard_index)
    inp = input_path(cfg)
    if not source_exists(inp) and not cfg.allow_download:
        raise FileNotFoundError(2, "input not found", str(inp))
    stats: dict[str, dict[str, Any]] = {}
    to_merge: list[ScoreSteps] = []
    for kind in kinds:
        steps = ScoreSteps.of(cfg, kind)
        if step_state(steps.merged()) is not None:
            log.info("%s: %s is complete; nothing to do", kind, steps.output)
            stats[kind] = {"skipped": True, "output": str(steps.output)}
        else:
            to_merge.append(steps)
            stats[kind] = {"output": str(steps.output), "shard": f"{spec.index}/{spec.count}"}
    parsed: Parsed = {}
    for steps in to_merge:  # what the samples were made of (shapes, turns, split rules, derived fields)
        report = InputReport.of(parsed_samples(cfg, steps.kind, parsed)[0])
        stats[steps.kind]["input"] = report.to_dict()
        log.info("%s input %s: %s", steps.kind, inp, report.format())
    _score_shard(cfg, to_merge, spec, show_progress, parsed, stats)
    for steps in to_merge:
        merged = barrier_and_merge(spec, lambda: merge_scores(cfg, steps, spec.count, parsed))
        if merged:
            stats[steps.kind]["merged"] = merged
            log.info("%s: %s", steps.kind, merged)
    return stats


def _score_shard(cfg: SelectRun, to_score: list[ScoreSteps], spec: ShardSpec, show_progress: bool,
                 parsed: Parsed, stats: dict[str, dict[str, Any]]) -> None:
    """This shard's part file of each kind in `to_score`, made in one pass (`run_steps`: finished parts
    are skipped); their counts go into `stats`. A refusal caused by an edited input says so."""
    parts = {s.kind: s.part(spec.index, spec.count) for s in to_score}

    def score(runs: list[StepRun]) -> dict[str, dict[str, Any]]:
        jobs = {kind: run for run in runs for kind, part in parts.items() if run.spec.name == part.name}
        counts = _score_parts(cfg, jobs, spec, show_progress, parsed)
        for kind, c in counts.items():  # (a part's counts also have a "skipped" key: the ids already there)
            stats[kind].update(c)
        return {parts[kind].name: c for kind, c in counts.items()}

    try:
        run_steps(list(parts.values()), score)
    except SettingsChanged as e:
        changed = [s for s in to_score if s.input_changed()]
        if changed:
            raise SettingsChanged(f"the input {input_path(cfg)} changed since {changed[0].output} was begun: {e}"
                                  ) from None
        raise


def _prepared_for(cfg: SelectRun, kind: str, builder: PromptBuilder, spec: ShardSpec, rejects: RejectSink,
                  cache: dict, parsed: Parsed) -> list[Prepared]:
    """The shard's samples that `kind` can score, tokenized (through `cache`, shared between kinds);
    the others go to `rejects` with their reason."""
    inp = input_path(cfg)
    samples, parse_rejects = parsed_samples(cfg, kind, parsed)
    parse_rejects.replay(ShardRejects(rejects, spec))
    owned = [sv for pos, sv in enumerate(samples) if spec.owns(pos)]
    prepared = []
    for lineno, s, p in prepare_all(builder, owned, rejects, str(inp), cache):
        if kind == "cam" and not p.segment_spans:
            n_ctx = p.context_span[1] - p.context_span[0]
            rejects.add(f"context too short: {n_ctx} tokens < one segment ({cfg.select.segment_tokens}), "
                        "needed for CAM", file=str(inp), line=lineno, field_name="context", record_id=s.id)
            continue
        prepared.append(p)
    return prepared


def _score_parts(cfg: SelectRun, jobs: dict[str, StepRun], spec: ShardSpec,
                 show_progress: bool, parsed: Parsed) -> dict[str, dict[str, Any]]:
    """Score the pending part files of this shard (kind -> its part's run); their counts."""
    from longcurate.core.models import load_tokenizer

    name_b = model_b_name(cfg)
    tok = load_tokenizer(name_b, cfg.allow_download, cfg.trust_remote_code)
    builder = make_builder(cfg, tok, max_positions(name_b, cfg.allow_download, cfg.trust_remote_code))
    cache: dict = {}  # sample id -> Prepared | InputReject: one tokenization per sample
    rejects = {kind: Rejects(part.rejected) for kind, part in jobs.items()}
    prepared = {kind: _prepared_for(cfg, kind, builder, spec, rejects[kind], cache, parsed) for kind in jobs}
    desc = f"score {'+'.join(jobs)} [{spec.index}/{spec.count}]"
    if set(jobs) == {"hmg", "cam"}:
        counts = _score_joint(cfg, builder, prepared, {k: part.output for k, part in jobs.items()}, desc,
                              show_progress)
    else:
        (kind, part), = jobs.items()
        units = prepared[kind]
        counts = {kind: run_parts(part.output, units, [p.id for p in units], [len(p.input_ids) for p in units],
                                  _compute_fn(cfg, kind, builder, show_progress), chunk_sizer(cfg),
                                  progress_desc=desc, show_progress=show_progress)}
    for kind in jobs:
        rejects[kind].close()
        counts[kind]["rejected"] = rejects[kind].total
        if rejects[kind].total:
            log.info("%s shard %d: %s", kind, spec.index, rejects[kind].summary())
    return counts


def _score_joint(cfg: SelectRun, builder: PromptBuilder, prepared: dict[str, list[Prepared]],
                 parts: dict[str, Path], desc: str, show_progress: bool) -> dict[str, dict[str, int]]:
    """HMG and CAM chunk by chunk (HMG's chunks; CAM's samples are a subset of HMG's: the first
    `cam_limit` valid ones that have segments). Per chunk: θ_B once over the full prompts, with the
    attention probe on CAM's samples (`nll_and_attention`), θ_A as `hmg_records` runs it, and CAM's
    segment rows; records go to both part files."""
    from longcurate.select.cam import cam_records
    from longcurate.select.hmg import hmg_records

    sel = cfg.select
    units = prepared["hmg"]
    hmg_ids = {p.id for p in units}
    cam_ids = {p.id for p in prepared["cam"]}
    if not cam_ids <= hmg_ids:  # cannot happen: CAM reads a prefix of HMG's samples and rejects more
        raise RuntimeError(f"CAM samples missing from HMG's: {sorted(cam_ids - hmg_ids)[:5]}")
    engines = lazy(lambda: load_engines(cfg, "hmg", show_progress))

    def compute(batch: list[Prepared]) -> dict[str, list[dict[str, Any]]]:
        e = engines()
        in_cam = [p.id in cam_ids for p in batch]
        # Samples outside CAM carry no segments: no probe work for them (a batch without any: none at all).
        items = [p.item() if c else p.item(segment_spans=[]) for p, c in zip(batch, in_cam)]
        res_b, attn = e.engine_b.nll_and_attention(items, layers=sel.layers, key_block=sel.key_block)
        hmg = hmg_records(batch, builder, e.engine_b, e.short, e.name_b, e.short_window, res_b=res_b)
        cam_batch = [p for p, c in zip(batch, in_cam) if c]
        cam = cam_records(cam_batch, builder, e.engine_b, model=e.name_b, layers=sel.layers,
                          key_block=sel.key_block, metric=sel.cas_metric,
                          attention=[a for a, c in zip(attn, in_cam) if c]) if cam_batch else []
        return {"hmg": hmg, "cam": cam}

    return run_joint_parts(parts, units, [p.id for p in units], [len(p.input_ids) for p in units],
                           {"hmg": None, "cam": cam_ids}, compute, chunk_sizer(cfg), progress_desc=desc,
                           show_progress=show_progress)


def _compute_fn(cfg: SelectRun, kind: str, builder: PromptBuilder,
                show_progress: bool) -> Callable[[list[Prepared]], list[dict[str, Any]]]:
    """One kind's scorer; models are loaded on first use, so a finished shard never loads them."""
    from longcurate.select.cam import cam_records
    from longcurate.select.hmg import hmg_records

    sel = cfg.select
    engines = lazy(lambda: load_engines(cfg, kind, show_progress))

    def compute(batch: list[Prepared]) -> list[dict[str, Any]]:
        e = engines()
        if kind == "hmg":
            return hmg_records(batch, builder, e.engine_b, e.short, e.name_b, e.short_window)
        return cam_records(batch, builder, e.engine_b, model=e.name_b, layers=sel.layers,
                           key_block=sel.key_block, metric=sel.cas_metric)

    return compute


__all__ = ["run_score", "run_scores", "merge_scores", "expected_ids", "parse_input", "parsed_samples", "make_builder",
           "chunk_sizer", "Parsed"]
