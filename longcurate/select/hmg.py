"""HMG (Homologous Models' Guidance): response perplexity under a short model θ_A and a long model θ_B.

θ_A is θ_B's checkpoint (or `model_a`, a separate checkpoint), optionally with its RoPE overridden
(`rope_scaling`, e.g. dynamic NTK as the paper's 4K model), and optionally fed only a `window`: the
instruction, the response and the last context tokens that fit. `hmg = norm(PPL_A) − norm(PPL_B)` with
min-max normalisation over the whole dataset, so it is computed when the shards are merged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from longcurate.core.errors import UserError
from longcurate.select.inputs import Prepared, PromptBuilder


@dataclass
class ShortModel:
    """How θ_A differs from θ_B: its label, the engine that runs it and the window it sees."""

    label: str
    engine: Any  # ScoringEngine over θ_A (may be θ_B's engine when only the window differs)
    window: int | None
    same_as_b: bool  # same weights and RoPE as θ_B: inputs that fit the window reuse θ_B's result


def rope_overrides(name: str, rope_scaling: dict[str, Any], allow_download: bool = False) -> dict[str, Any]:
    """Config overrides that give a checkpoint another RoPE. transformers 5 keeps RoPE settings in
    `config.rope_parameters` (with `rope_theta` inside), so the given keys are merged into it."""
    from transformers import AutoConfig

    from longcurate.core.models import materialize

    conf = AutoConfig.from_pretrained(materialize(name), local_files_only=not allow_download)
    params = dict(getattr(conf, "rope_parameters", None) or {})
    extra = dict(rope_scaling)
    if "type" in extra and "rope_type" not in extra:
        extra["rope_type"] = extra.pop("type")
    params.update(extra)
    params.setdefault("rope_theta", getattr(conf, "rope_theta", 10000.0))
    return {"rope_parameters": params}


def short_window_of(window: int | None, model) -> int:
    """The short model's usable context, for the diagnostics' "gold beyond the window" label."""
    if window:
        return int(window)
    params = getattr(model.config, "rope_parameters", None) or {}
    return int(params.get("original_max_position_embeddings") or model.config.max_position_embeddings)


def hmg_records(batch: list[Prepared], builder: PromptBuilder, engine_b, short: ShortModel,
                model_b: str, short_window: int, res_b: list | None = None) -> list[dict[str, Any]]:
    """Score a chunk under both models; one record per sample (normalisation comes at merge).
    `res_b`: θ_B's NLLResults for the chunk when already computed (the select stage takes them from
    the forward that also measures CAM's attention); otherwise θ_B runs here."""
    if res_b is None:
        res_b = engine_b.response_nll([p.item() for p in batch])
    elif len(res_b) != len(batch) or any(r.id != p.id for r, p in zip(res_b, batch)):
        raise ValueError("res_b must hold one θ_B result per sample of the batch, in order")
    views = []
    for p in batch:
        ids, r0, first_char = builder.window_view(p, short.window) if short.window else (p.input_ids, p.response_start, None)
        views.append((ids, r0, first_char))
    need_a = [i for i, (ids, _, _) in enumerate(views)
              if not (short.same_as_b and len(ids) == len(batch[i].input_ids))]
    res_a = {i: r for i, r in zip(need_a, short.engine.response_nll(
        [batch[i].item(views[i][0], views[i][1], []) for i in need_a]))} if need_a else {}
    out = []
    for i, p in enumerate(batch):
        b = res_b[i]
        a = res_a.get(i, b)
        if a.n_tokens != b.n_tokens:
            raise RuntimeError(f"{p.id}: θ_A scored {a.n_tokens} response tokens, θ_B {b.n_tokens}")
        rec: dict[str, Any] = {
            "id": p.id,
            "nll_a": a.nll, "ppl_a": a.ppl, "nll_b": b.nll, "ppl_b": b.ppl,
            "n_response_tokens": b.n_tokens,
            "n_tokens": len(p.input_ids), "n_tokens_a": len(views[i][0]),
            "model_a": short.label, "window_a": short.window, "model_b": model_b, "window_b": None,
            "prompt_format": builder.format, "truncated": p.truncated,
        }
        if p.gold_char_start is not None:
            _, _, first = builder.window_view(p, short_window)
            rec["gold_beyond_window"] = bool(first is None or p.gold_char_start < first)
        out.append(rec)
    return out


def minmax(values: list[float]) -> list[float]:
    """Min-max normalisation to [0, 1]; a constant column maps to 0."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return [0.0 for _ in values]
    lo, hi = min(finite), max(finite)
    span = hi - lo
    return [((v - lo) / span if span > 0 else 0.0) if math.isfinite(v) else 1.0 for v in values]


HMG_SCALES = ("ppl", "log")


def finalize_hmg(records: list[dict[str, Any]], scale: str = "ppl") -> list[dict[str, Any]]:
    """Add `norm_ppl_a`, `norm_ppl_b` and `hmg = norm(PPL_A) − norm(PPL_B)` over the whole dataset.

    `scale: ppl` is the paper's definition. PPL is heavy-tailed (a 1-token answer can have a PPL of
    1e5 while most sit below 50), so one outlier squeezes every other sample towards 0 after min-max;
    `scale: log` normalises log PPL (= the mean NLL) instead, which keeps the spread."""
    if scale not in HMG_SCALES:
        raise UserError(f"select.hmg_scale: unknown hmg scale {scale!r}; use one of {HMG_SCALES}")
    key_a, key_b = ("ppl_a", "ppl_b") if scale == "ppl" else ("nll_a", "nll_b")
    na = minmax([r[key_a] for r in records])
    nb = minmax([r[key_b] for r in records])
    out = []
    for r, a, b in zip(records, na, nb):
        r = dict(r)
        r["norm_ppl_a"], r["norm_ppl_b"], r["hmg"] = a, b, a - b
        out.append(r)
    return out
