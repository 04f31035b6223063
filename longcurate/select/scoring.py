"""One scoring job (HMG, CAM or both) for one shard, top to bottom: read, quarantine, tokenize, load
models, score the shard's samples into its part files, finish them, merge when this process may.

    longcurate select score hmg --input samples.jsonl --output scores/hmg.jsonl
    torchrun --nproc_per_node 8 -m longcurate select score hmg --input ...   # one part per rank, rank 0 merges

The select stage scores HMG and CAM together (`run_scores`, or `select score both`): one θ_B forward per
sample serves both, written to the same part files as the two separate commands. Memory is bounded by a
chunk, not by the input: the input is read once in a stream (`sample_index`), the shard's samples wait
in a spill file, and they are tokenized a chunk at a time (`shard_plan`). Each part file and
each merge is a step of the step runner (`core.runner`); the steps and their policies are in
`steps.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from longcurate.core.errors import SettingsChanged, UserError
from longcurate.core.jsonl import Rejects
from longcurate.core.reader import source_exists
from longcurate.core.runner import StepRun, run_step, run_steps, step_state
from longcurate.select.conversations import InputReport
from longcurate.select.engines import lazy, load_engines, max_positions
from longcurate.select.inputs import Prepared, PromptBuilder
from longcurate.select.merge import merge_parts
from longcurate.select.sample_index import InputIndex
from longcurate.select.shard import ChunkSizer, ShardSpec, barrier_and_merge, run_joint_parts, run_parts, shard_spec
from longcurate.select.shard_plan import ShardPlan, Unit
from longcurate.select.steps import ScoreSteps, input_path, model_b_name, sample_reading, score_limit

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun

log = logging.getLogger("longcurate.select")


@dataclass
class ShardInput:
    """This process's one read of the input (`InputIndex`), made with the largest limit of the kinds
    it scores: spilling its own samples when it scores, and the ids and lines alone for a merge. The
    same pass counts what each kind's samples were made of (`InputReport`)."""

    cfg: SelectRun
    spec: ShardSpec
    limits: dict[str, int | None]  # kind -> its sample limit
    index: InputIndex | None = None

    @classmethod
    def of(cls, cfg: SelectRun, spec: ShardSpec, kinds: list[str]) -> "ShardInput":
        return cls(cfg, spec, {kind: score_limit(cfg, kind) for kind in kinds})

    @property
    def limit(self) -> int | None:
        limits = list(self.limits.values())
        return None if not limits or None in limits else max(limits)

    def read(self, beside: Path | None = None) -> InputIndex:
        """A new pass over the input; with `beside`, this shard's samples are spilled there."""
        self.close()
        self.index = InputIndex.read(input_path(self.cfg), self.limit, self.cfg.allow_download,
                                     owns=self.spec.owns if beside is not None else None, beside=beside,
                                     reading=sample_reading(self.cfg), report_limits=tuple(set(self.limits.values())))
        return self.index

    def for_scoring(self, beside: Path) -> InputIndex:
        """The index with this shard's samples spilled (the one already read when it spilled them)."""
        return self.index if self.index is not None and self.index.spill is not None else self.read(beside)

    def for_merge(self, limit: int | None) -> InputIndex:
        """An index that read as far as `limit` (the one scoring made, else a new pass without spill)."""
        if self.index is None or not self.index.covers(limit):
            self.close()
            self.index = InputIndex.read(input_path(self.cfg), limit, self.cfg.allow_download,
                                         reading=sample_reading(self.cfg))
        return self.index

    def report(self, kind: str) -> InputReport:
        if self.index is None:
            raise RuntimeError("the input was not read")
        return self.index.reports[self.limits[kind]]

    def close(self) -> None:
        if self.index is not None:
            self.index.close()


def expected_ids(cfg: SelectRun, kind: str) -> list[str]:
    """Every id a complete run must have scored or rejected (all shards together)."""
    limit = score_limit(cfg, kind)
    return InputIndex.read(input_path(cfg), limit, cfg.allow_download, reading=sample_reading(cfg)).expected(limit)


def merge_scores(cfg: SelectRun, steps: ScoreSteps, count: int, inputs: ShardInput | None = None,
                 again: bool = False) -> dict[str, Any]:
    """Merge `count` finished part files into the score file; HMG's normalisation and CAM's importance
    temperature are applied here, over the whole dataset. `again`: even when it is complete."""
    from longcurate.select.cam import CamFinalizer
    from longcurate.select.hmg import HmgFinalizer

    limit = score_limit(cfg, steps.kind)
    inputs = inputs or ShardInput(cfg, ShardSpec(), {steps.kind: limit})

    def merge(run: StepRun) -> dict[str, Any]:
        index = inputs.for_merge(limit)
        finalizer = (HmgFinalizer(steps.hmg_scale) if steps.kind == "hmg"
                     else CamFinalizer(steps.importance_temperature))
        return merge_parts(run.output, steps.parts(count), index.expected(limit), finalizer, source=index.source,
                           line_of=index.line_of(limit))

    return run_step(steps.merged(again), merge)


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
    tokenized once per chunk and its full prompt goes through θ_B once, giving HMG's θ_B NLL and CAM's
    segment attention from the same forward. The part files, resume and merge are those of the
    separate commands. This shard's part files are locked while they are scored, each merged file
    while it is merged (`core.runner.run_steps`): a second run on them stops at once."""
    if len(set(kinds)) != len(kinds):
        raise UserError(f"score kinds repeated: {kinds}")
    if len(kinds) > 1 and cfg.select.output:
        raise UserError("select.output names one command's output; leave it empty to score several kinds "
                        "(select.scores_dir places them)")
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
    inputs = ShardInput.of(cfg, spec, [s.kind for s in to_merge])
    try:
        _read_input(inputs, to_merge, spec, stats)
        _score_shard(cfg, to_merge, spec, show_progress, inputs, stats)
        for steps in to_merge:
            merged = barrier_and_merge(spec, lambda: merge_scores(cfg, steps, spec.count, inputs))
            if merged:
                stats[steps.kind]["merged"] = merged
                log.info("%s: %s", steps.kind, merged)
    finally:
        inputs.close()
    return stats


def _read_input(inputs: ShardInput, to_score: list[ScoreSteps], spec: ShardSpec,
                stats: dict[str, dict[str, Any]]) -> None:
    """Read the input once before any scoring (this shard's samples spilled when a part of it is still
    to be scored) and report what each kind's samples were made of (shapes, turns, split rules,
    derived fields)."""
    if not to_score:
        return
    pending = [s.part(spec.index, spec.count) for s in to_score if not _part_complete(s, spec)]
    inputs.read(beside=pending[0].output if pending else None)
    for steps in to_score:
        report = inputs.report(steps.kind)
        stats[steps.kind]["input"] = report.to_dict()
        log.info("%s input %s: %s", steps.kind, input_path(inputs.cfg), report.format())


def _part_complete(steps: ScoreSteps, spec: ShardSpec) -> bool:
    try:
        return step_state(steps.part(spec.index, spec.count)) is not None
    except SettingsChanged:
        return False  # refused by `_score_shard`, naming the input when that is what changed


def _score_shard(cfg: SelectRun, to_score: list[ScoreSteps], spec: ShardSpec, show_progress: bool,
                 inputs: ShardInput, stats: dict[str, dict[str, Any]]) -> None:
    """This shard's part file of each kind in `to_score`, made in one pass (`run_steps`: finished parts
    are skipped); their counts go into `stats`. A refusal caused by an edited input says so."""
    parts = {s.kind: s.part(spec.index, spec.count) for s in to_score}

    def score(runs: list[StepRun]) -> dict[str, dict[str, Any]]:
        jobs = {kind: run for run in runs for kind, part in parts.items() if run.spec.name == part.name}
        counts = _score_parts(cfg, jobs, spec, show_progress, inputs)
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


def _score_parts(cfg: SelectRun, jobs: dict[str, StepRun], spec: ShardSpec, show_progress: bool,
                 inputs: ShardInput) -> dict[str, dict[str, Any]]:
    """Score the pending part files of this shard (kind -> its part's run); their counts. The input is
    read once (this shard's samples spilled), each sample tokenized once to plan the chunks, and the
    samples read back and tokenized a chunk at a time (`shard_plan`)."""
    from longcurate.core.models import load_tokenizer

    name_b = model_b_name(cfg)
    tok = load_tokenizer(name_b, cfg.allow_download, cfg.trust_remote_code)
    builder = make_builder(cfg, tok, max_positions(name_b, cfg.allow_download, cfg.trust_remote_code))
    index = inputs.for_scoring(beside=next(iter(jobs.values())).output)
    rejects = {kind: Rejects(part.rejected) for kind, part in jobs.items()}
    try:
        plan = ShardPlan.make(index, builder, spec, {kind: score_limit(cfg, kind) for kind in jobs}, rejects)
        desc = f"score {'+'.join(jobs)} [{spec.index}/{spec.count}]"
        if set(jobs) == {"hmg", "cam"}:
            counts = _score_joint(cfg, plan, {k: part.output for k, part in jobs.items()}, desc, show_progress)
        else:
            (kind, part), = jobs.items()
            units = plan.units[kind]
            score = _compute_fn(cfg, kind, builder, show_progress)
            counts = {kind: run_parts(part.output, units, [u.id for u in units], [u.length for u in units],
                                      lambda chunk: score(plan.prepare(chunk)), chunk_sizer(cfg),
                                      progress_desc=desc, show_progress=show_progress)}
    finally:
        for sink in rejects.values():
            sink.close()
        index.close()  # the spill file; the ids and lines stay for the merge
    for kind in jobs:
        counts[kind]["rejected"] = rejects[kind].total
        if rejects[kind].total:
            log.info("%s shard %d: %s", kind, spec.index, rejects[kind].summary())
    return counts


def _score_joint(cfg: SelectRun, plan: ShardPlan, parts: dict[str, Path], desc: str,
                 show_progress: bool) -> dict[str, dict[str, int]]:
    """HMG and CAM chunk by chunk (HMG's chunks; CAM's samples are a subset of HMG's: the first
    `cam_limit` valid ones that have segments). Per chunk: θ_B once over the full prompts, with the
    attention probe on CAM's samples (`nll_and_attention`), θ_A as `hmg_records` runs it, and CAM's
    segment rows; records go to both part files."""
    from longcurate.select.cam import cam_records
    from longcurate.select.hmg import hmg_records

    sel, builder = cfg.select, plan.builder
    units = plan.units["hmg"]
    hmg_ids = {u.id for u in units}
    cam_ids = {u.id for u in plan.units["cam"]}
    if not cam_ids <= hmg_ids:  # cannot happen: CAM reads a prefix of HMG's samples and rejects more
        raise RuntimeError(f"CAM samples missing from HMG's: {sorted(cam_ids - hmg_ids)[:5]}")
    engines = lazy(lambda: load_engines(cfg, "hmg", show_progress))

    def compute(chunk: list[Unit]) -> dict[str, list[dict[str, Any]]]:
        e = engines()
        batch = plan.prepare(chunk)
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

    return run_joint_parts(parts, units, [u.id for u in units], [u.length for u in units],
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


__all__ = ["run_score", "run_scores", "merge_scores", "expected_ids", "make_builder", "chunk_sizer", "ShardInput"]
