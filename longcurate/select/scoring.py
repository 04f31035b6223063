"""One scoring job (HMG or CAM) for one shard, top to bottom: read, quarantine, tokenize, load models,
score the shard's samples into its part file, mark it done, merge when this process may.

    longcurate score hmg --input samples.jsonl --output scores/hmg.jsonl
    torchrun --nproc_per_node 8 -m longcurate score hmg --input ...   # one part per rank, rank 0 merges

The select stage scores HMG and CAM together (`run_scores`): one tokenization and one θ_B forward per
sample serve both, written to the same part files as the two separate commands.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import (Rejects, is_done, is_done_with, mark_done, read_json_if_valid, rejected_path,
                                   write_json)
from longcurate.select.inputs import PromptBuilder, load_samples, prepare_all
from longcurate.select.shard import (ShardSpec, barrier_and_merge, merge_parts, part_path, run_joint_parts,
                                     run_parts, shard_spec)

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


def score_settings(cfg, kind: str) -> dict[str, Any]:
    """The settings that decide a score file's values (not how fast they are computed): part files
    made under other settings are never resumed into, and a merged file is redone when they change."""
    sel = cfg.select
    inp, _ = paths(cfg, kind)
    common = {"input": str(inp), "model_b": model_b_name(cfg), "dtype": sel.dtype, "prompt_format": sel.prompt_format,
              "max_length": sel.max_length, "overlong": sel.overlong, "segment_tokens": sel.segment_tokens,
              "limit": _limit(cfg, kind), "seed": cfg.seed}
    if kind == "hmg":
        return {**common, "model_a": sel.model_a, "window": sel.window, "rope_scaling": sel.rope_scaling}
    return {**common, "max_segments": sel.max_segments, "layers": sel.layers, "cas_metric": sel.cas_metric}


def merge_params(settings: dict[str, Any], kind: str, hmg_scale: str) -> dict[str, Any]:
    """What a merged score file records in its marker: the scoring settings and, for HMG, the scale
    its normalisation used (changing only that re-merges the parts; nothing is re-scored)."""
    return {**settings, **({"hmg_scale": hmg_scale} if kind == "hmg" else {})}


def merge_finalizer(kind: str, hmg_scale: str):
    """What the merge applies to the whole dataset's records: HMG's normalisation; nothing for CAM."""
    if kind != "hmg":
        return None
    from longcurate.select.hmg import finalize_hmg

    return lambda records: finalize_hmg(records, hmg_scale)


def settings_path(output: Path) -> Path:
    return output.with_name(output.name + ".settings.json")


def recorded_settings(output: Path) -> dict[str, Any] | None:
    """The scoring settings the parts of `output` were made with (None before any scoring)."""
    recorded = read_json_if_valid(settings_path(output))
    return recorded if isinstance(recorded, dict) else None


def guard_settings(output: Path, settings: dict[str, Any]) -> None:
    """Record the scoring settings beside `output`, or refuse when parts were scored under others."""
    settings = json.loads(json.dumps(settings))
    recorded = recorded_settings(output)
    if recorded is not None and recorded != settings:
        changed = sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))
        detail = ", ".join(f"{k}: {recorded.get(k)!r} -> {settings.get(k)!r}" for k in changed)
        raise ValueError(f"{output} was scored with other settings ({detail}); use another output_dir "
                         f"(or scores_dir), or delete {output.parent}/{output.stem}.* to re-score")
    if recorded != settings:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_json(settings_path(output), settings)


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


def expected_ids(cfg, kind: str, parsed: dict | None = None) -> list[str]:
    """Every id a complete run must have scored or rejected (all shards together)."""
    inp, _ = paths(cfg, kind)
    samples, _ = parse_input(inp, _limit(cfg, kind), parsed)
    return [s.id for _, s in samples]


class _RecordedRejects:
    """Parse-level rejects, kept so that one parse of the input serves every kind and the merge."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def add(self, reason: str, **kw: Any) -> None:
        self.calls.append((reason, kw))


def parse_input(inp: Path, limit: int | None, parsed: dict | None = None):
    """(samples, parse rejects as (reason, fields)) of the input, parsed once per (path, limit)
    through `parsed` when given."""
    key = (str(inp), limit)
    if parsed is None or key not in parsed:
        rec = _RecordedRejects()
        result = (load_samples(inp, rec, limit=limit), rec.calls)
        if parsed is None:
            return result
        parsed[key] = result
    return parsed[key]


def _limit(cfg, kind: str) -> int | None:
    sel = cfg.select
    lims = [x for x in (sel.limit, sel.cam_limit if kind == "cam" else None) if x is not None]
    return min(lims) if lims else None


def run_score(cfg, kind: str, show_progress: bool = True) -> dict[str, Any]:
    """Score this shard and, when this process may, merge. Returns stats."""
    return run_scores(cfg, [kind], show_progress)[kind]


def run_scores(cfg, kinds: list[str], show_progress: bool = True) -> dict[str, dict[str, Any]]:
    """Score this shard for each kind, then merge each when this process may; stats per kind.

    When HMG and CAM both still have work here, they run together (`_score_joint`): every sample is
    tokenized once and its full prompt goes through θ_B once, giving HMG's θ_B NLL and CAM's
    segment attention from the same forward. The part files, resume and merge are those of the
    separate commands."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown score kind {kind!r}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"score kinds repeated: {kinds}")
    if len(kinds) > 1 and cfg.select.output:
        raise ValueError("select.output names one command's output; leave it empty to score several kinds")
    spec = shard_spec(cfg.select.num_shards, cfg.select.shard_index)
    stats: dict[str, dict[str, Any]] = {}
    jobs: dict[str, tuple[Path, Path]] = {}
    merge_params_of: dict[str, dict[str, Any]] = {}
    to_merge: list[str] = []
    parsed: dict = {}  # (input, limit) -> parsed samples: one parse for scoring and merging
    for kind in kinds:
        inp, out = paths(cfg, kind)
        if not inp.exists():
            raise FileNotFoundError(f"input not found: {inp}")
        settings = score_settings(cfg, kind)
        guard_settings(out, settings)
        merge_params_of[kind] = merge_params(settings, kind, cfg.select.hmg_scale)
        if is_done_with(out, merge_params_of[kind]):
            log.info("%s: %s is complete; nothing to do", kind, out)
            stats[kind] = {"skipped": True, "output": str(out)}
            continue
        to_merge.append(kind)
        stats[kind] = {"output": str(out), "shard": f"{spec.index}/{spec.count}"}
        part = part_path(out, spec.index, spec.count)
        if not is_done(part):
            jobs[kind] = (inp, part)
    if jobs:
        for kind, counts in _score_parts(cfg, jobs, spec, show_progress, parsed).items():
            stats[kind].update(counts)
    for kind in to_merge:  # (a part's counts also have a "skipped" key: the number of ids already there)
        _, out = paths(cfg, kind)
        merged = barrier_and_merge(spec, lambda: merge_parts(out, expected_ids(cfg, kind, parsed), spec.count,
                                                             merge_finalizer(kind, cfg.select.hmg_scale),
                                                             params=merge_params_of[kind]))
        if merged:
            stats[kind]["merged"] = merged
            log.info("%s: %s", kind, merged)
    return stats


def _prepared_for(cfg, kind: str, inp: Path, builder: PromptBuilder, spec: ShardSpec, rejects: Rejects,
                  cache: dict, parsed: dict | None = None) -> list:
    """The shard's samples that `kind` can score, tokenized (through `cache`, shared between kinds);
    the others go to `rejects` with their reason."""
    sel = cfg.select
    samples, parse_rejects = parse_input(inp, _limit(cfg, kind), parsed)
    shard_rejects = _ShardRejects(rejects, spec)
    for reason, fields in parse_rejects:
        shard_rejects.add(reason, **fields)
    owned = [sv for pos, sv in enumerate(samples) if spec.owns(pos)]
    prepared = []
    for lineno, s, p in prepare_all(builder, owned, rejects, str(inp), cache):
        if kind == "cam" and not p.segment_spans:
            n_ctx = p.context_span[1] - p.context_span[0]
            rejects.add(f"context too short: {n_ctx} tokens < one segment ({sel.segment_tokens}), needed for CAM",
                        file=str(inp), line=lineno, field_name="context", record_id=s.id)
            continue
        prepared.append(p)
    return prepared


def _score_parts(cfg, jobs: dict[str, tuple[Path, Path]], spec: ShardSpec,
                 show_progress: bool, parsed: dict | None = None) -> dict[str, dict[str, Any]]:
    """Score the pending part files of this shard (kind -> (input, part)); marks each done."""
    from longcurate.core.models import load_tokenizer

    sel = cfg.select
    name_b = model_b_name(cfg)
    tok = load_tokenizer(name_b, cfg.allow_download, cfg.trust_remote_code)
    builder = make_builder(cfg, tok, _max_positions(name_b, cfg.allow_download))
    cache: dict = {}  # sample id -> Prepared | InputReject: one tokenization per sample
    rejects = {kind: Rejects(rejected_path(part)) for kind, (_, part) in jobs.items()}
    prepared = {kind: _prepared_for(cfg, kind, inp, builder, spec, rejects[kind], cache, parsed)
                for kind, (inp, _) in jobs.items()}
    desc = f"score {'+'.join(jobs)} [{spec.index}/{spec.count}]"
    if set(jobs) == {"hmg", "cam"}:
        counts = _score_joint(cfg, builder, prepared, {k: part for k, (_, part) in jobs.items()}, desc,
                              show_progress)
    else:
        (kind, (_, part)), = jobs.items()
        units = prepared[kind]
        compute = _compute_fn(cfg, kind, builder, show_progress)
        counts = {kind: run_parts(part, units, [p.id for p in units], [len(p.input_ids) for p in units],
                                  compute, sel.chunk_size, progress_desc=desc, show_progress=show_progress)}
    for kind, (_, part) in jobs.items():
        rejects[kind].close()
        counts[kind]["rejected"] = rejects[kind].total
        if rejects[kind].total:
            log.info("%s shard %d: %s", kind, spec.index, rejects[kind].summary())
        mark_done(part, counts[kind])
    return counts


def _score_joint(cfg, builder: PromptBuilder, prepared: dict[str, list], parts: dict[str, Path], desc: str,
                 show_progress: bool) -> dict[str, dict[str, int]]:
    """HMG and CAM chunk by chunk (HMG's chunks; CAM's samples are a subset of HMG's: the first
    `cam_limit` valid ones that have segments). Per chunk: θ_B once over the full prompts, with the
    attention probe on CAM's samples (`nll_and_attention`), θ_A as `hmg_records` runs it, and CAM's
    segment rows; records go to both part files."""
    sel = cfg.select
    units = prepared["hmg"]
    hmg_ids = {p.id for p in units}
    cam_ids = {p.id for p in prepared["cam"]}
    if not cam_ids <= hmg_ids:  # cannot happen: CAM reads a prefix of HMG's samples and rejects more
        raise RuntimeError(f"CAM samples missing from HMG's: {sorted(cam_ids - hmg_ids)[:5]}")
    state: dict[str, Any] = {}

    def compute(batch):
        from longcurate.select.cam import cam_records
        from longcurate.select.hmg import hmg_records

        if not state:
            state.update(load_engines(cfg, "hmg", show_progress))
        engine_b = state["engine_b"]
        in_cam = [p.id in cam_ids for p in batch]
        # Samples outside CAM carry no segments: no probe work for them (a batch without any: none at all).
        items = [p.item() if c else p.item(segment_spans=[]) for p, c in zip(batch, in_cam)]
        res_b, attn = engine_b.nll_and_attention(items, layers=sel.layers, key_block=sel.key_block)
        hmg = hmg_records(batch, builder, engine_b, state["short"], state["name_b"], state["short_window"],
                          res_b=res_b)
        cam_batch = [p for p, c in zip(batch, in_cam) if c]
        cam = cam_records(cam_batch, builder, engine_b, model=state["name_b"], layers=sel.layers,
                          key_block=sel.key_block, metric=sel.cas_metric,
                          attention=[a for a, c in zip(attn, in_cam) if c]) if cam_batch else []
        return {"hmg": hmg, "cam": cam}

    return run_joint_parts(parts, units, [p.id for p in units], [len(p.input_ids) for p in units],
                           {"hmg": None, "cam": cam_ids}, compute, sel.chunk_size, progress_desc=desc,
                           show_progress=show_progress)


def _compute_fn(cfg, kind: str, builder: PromptBuilder, show_progress: bool):
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
