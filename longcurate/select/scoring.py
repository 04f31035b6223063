"""One scoring job (HMG or CAM) for one shard, top to bottom: read, quarantine, tokenize, load models,
score the shard's samples into its part file, mark it done, merge when this process may.

    longcurate score hmg --input samples.jsonl --output scores/hmg.jsonl
    torchrun --nproc_per_node 8 -m longcurate score hmg --input ...   # one part per rank, rank 0 merges
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import Rejects, is_done, mark_done, rejected_path
from longcurate.select.inputs import PromptBuilder, load_samples, prepare_all
from longcurate.select.shard import ShardSpec, barrier_and_merge, merge_parts, part_path, run_parts, shard_spec

log = logging.getLogger("longcurate.select")

KINDS = ("hmg", "cam")


class _ShardRejects:
    """Parse-level rejects are seen by every shard; each shard records those on its own lines only."""

    def __init__(self, inner: Rejects, spec: ShardSpec):
        self.inner, self.spec = inner, spec

    def add(self, reason: str, **kw: Any) -> None:
        if self.spec.owns(int(kw.get("line") or 0)):
            self.inner.add(reason, **kw)


def paths(cfg, kind: str) -> tuple[Path, Path]:
    """(input, output) of a scoring command."""
    sel = cfg.select
    inp = cfg.path(sel.input, "samples.jsonl")
    out = Path(sel.output) if sel.output else scores_dir(cfg) / f"{kind}.jsonl"
    return inp, out


def scores_dir(cfg) -> Path:
    return cfg.path(cfg.select.scores_dir, "select")


def model_b_name(cfg) -> str:
    return cfg.select.model or cfg.model


def make_builder(cfg, tokenizer, max_length: int) -> PromptBuilder:
    sel = cfg.select
    return PromptBuilder(tokenizer, prompt_format=sel.prompt_format, max_length=sel.max_length or max_length,
                         overlong=sel.overlong, segment_tokens=sel.segment_tokens,
                         max_segments=sel.max_segments, seed=cfg.seed)


def _max_positions(name: str, allow_download: bool) -> int:
    from transformers import AutoConfig

    from longcurate.core.models import materialize

    conf = AutoConfig.from_pretrained(materialize(name), local_files_only=not allow_download)
    return int(conf.max_position_embeddings)


def expected_ids(cfg, kind: str) -> list[str]:
    """Every id a complete run must have scored or rejected (all shards together)."""
    inp, _ = paths(cfg, kind)
    samples = load_samples(inp, _Discard(), limit=_limit(cfg, kind))
    return [s.id for _, s in samples]


class _Discard:
    def add(self, *a: Any, **kw: Any) -> None:
        pass


def _limit(cfg, kind: str) -> int | None:
    sel = cfg.select
    lims = [x for x in (sel.limit, sel.cam_limit if kind == "cam" else None) if x is not None]
    return min(lims) if lims else None


def run_score(cfg, kind: str, show_progress: bool = True) -> dict[str, Any]:
    """Score this shard and, when this process may, merge. Returns stats."""
    if kind not in KINDS:
        raise ValueError(f"unknown score kind {kind!r}")
    sel = cfg.select
    inp, out = paths(cfg, kind)
    if not inp.exists():
        raise FileNotFoundError(f"input not found: {inp}")
    spec = shard_spec(sel.num_shards, sel.shard_index)
    if is_done(out):
        log.info("%s: %s is complete; nothing to do", kind, out)
        return {"skipped": True, "output": str(out)}
    part = part_path(out, spec.index, spec.count)
    stats: dict[str, Any] = {"output": str(out), "shard": f"{spec.index}/{spec.count}"}
    if not is_done(part):
        stats.update(_score_part(cfg, kind, inp, part, spec, show_progress))
    finalize = None
    if kind == "hmg":
        from longcurate.select.hmg import finalize_hmg as finalize
    merged = barrier_and_merge(spec, lambda: merge_parts(out, expected_ids(cfg, kind), spec.count, finalize))
    if merged:
        stats["merged"] = merged
        log.info("%s: %s", kind, merged)
    return stats


def _score_part(cfg, kind: str, inp: Path, part: Path, spec: ShardSpec, show_progress: bool) -> dict[str, Any]:
    from longcurate.core.models import load_tokenizer

    sel = cfg.select
    name_b = model_b_name(cfg)
    rejects = Rejects(rejected_path(part))
    samples = load_samples(inp, _ShardRejects(rejects, spec), limit=_limit(cfg, kind))
    owned = [sv for pos, sv in enumerate(samples) if spec.owns(pos)]
    tok = load_tokenizer(name_b, cfg.allow_download, cfg.trust_remote_code)
    builder = make_builder(cfg, tok, _max_positions(name_b, cfg.allow_download))
    prepared = []
    for _, s, p in prepare_all(builder, owned, rejects, str(inp)):
        if kind == "cam" and not p.segment_spans:
            n_ctx = p.context_span[1] - p.context_span[0]
            rejects.add(f"context too short: {n_ctx} tokens < one segment ({sel.segment_tokens}), needed for CAM",
                        file=str(inp), line=_line_of(samples, s.id), field_name="context", record_id=s.id)
            continue
        prepared.append(p)
    compute = _compute_fn(cfg, kind, builder, prepared, part, show_progress)
    counts = run_parts(part, prepared, [p.id for p in prepared], [len(p.input_ids) for p in prepared],
                       compute, sel.chunk_size, progress_desc=f"score {kind} [{spec.index}/{spec.count}]",
                       show_progress=show_progress)
    rejects.close()
    counts["rejected"] = rejects.total
    if rejects.total:
        log.info("%s shard %d: %s", kind, spec.index, rejects.summary())
    mark_done(part, counts)
    return counts


def _line_of(samples, sid: str) -> int | None:
    return next((ln for ln, s in samples if s.id == sid), None)


def _compute_fn(cfg, kind: str, builder: PromptBuilder, prepared, part: Path, show_progress: bool):
    """Models are loaded on first use, so a finished shard never loads them."""
    state: dict[str, Any] = {}

    def compute(batch):
        if not state:
            state.update(load_engines(cfg, kind, show_progress))
        if kind == "hmg":
            from longcurate.select.hmg import hmg_records

            return hmg_records(batch, builder, state["engine_b"], state["short"], state["name_b"],
                               state["short_window"])
        from longcurate.select.cam import cam_records

        sel = cfg.select
        return cam_records(batch, builder, state["engine_b"], model=state["name_b"], layers=sel.layers,
                           key_block=sel.key_block, metric=sel.cas_metric)

    return compute


def load_engines(cfg, kind: str, show_progress: bool = False) -> dict[str, Any]:
    """θ_B's engine, and for HMG θ_A as a ShortModel (its own checkpoint / RoPE, or θ_B windowed)."""
    from longcurate.core.models import load_model
    from longcurate.select.engine import ScoringEngine
    from longcurate.select.hmg import ShortModel, rope_overrides, short_window_of

    sel = cfg.select
    name_b = model_b_name(cfg)
    kw = dict(dtype=sel.dtype, device=sel.device, allow_download=cfg.allow_download,
              trust_remote_code=cfg.trust_remote_code)
    model_b = load_model(name_b, **kw)
    eng = dict(batch_tokens=sel.batch_tokens, max_batch_size=sel.max_batch_size, show_progress=False)
    engine_b = ScoringEngine(model_b, **eng)
    state: dict[str, Any] = {"engine_b": engine_b, "name_b": name_b}
    if kind != "hmg":
        return state
    if sel.model_a is None and sel.rope_scaling is None:
        if not sel.window:
            raise ValueError("θ_A equals θ_B: set select.window, select.model_a or select.rope_scaling")
        short = ShortModel(f"{name_b}@window{sel.window}", engine_b, sel.window, same_as_b=True)
        model_a = model_b
    else:
        name_a = sel.model_a or name_b
        overrides = rope_overrides(name_a, sel.rope_scaling, cfg.allow_download) if sel.rope_scaling else None
        model_a = load_model(name_a, config_overrides=overrides, **kw)
        dyn = bool(sel.rope_scaling) and "dynamic" in str(sel.rope_scaling.get("rope_type", sel.rope_scaling.get("type")))
        # Dynamic NTK rescales RoPE by the longest sequence in the batch: score θ_A one sample at a time.
        engine_a = ScoringEngine(model_a, **{**eng, "max_batch_size": 1 if dyn else sel.max_batch_size})
        label = name_a + (f"+rope{sel.rope_scaling}" if sel.rope_scaling else "")
        if sel.window:
            label += f"@window{sel.window}"
        short = ShortModel(label, engine_a, sel.window, same_as_b=False)
    state["short"] = short
    state["short_window"] = short_window_of(sel.window, model_a)
    return state
