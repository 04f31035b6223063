"""HMG (Homologous Models' Guidance): response perplexity under a short model θ_A and a long model θ_B.

θ_A is θ_B's checkpoint (or `model_a`, a separate checkpoint), optionally with its RoPE overridden
(`rope_scaling`, e.g. dynamic NTK as the paper's 4K model), and optionally fed only a `window`: the
instruction, the response and the last context tokens that fit. `hmg = norm(PPL_A) − norm(PPL_B)` with
min-max normalisation over the whole dataset, so it is computed when the shards are merged.

The same records carry the figures of GATEAU's baselines under θ_B: `ppl_b` = PPL(y | x) (the
`perplexity` baseline) and Cherry's instruction-following difficulty `ifd = PPL(y | x) / PPL(y)`, with
PPL(y) from one short extra pass of θ_B over the response alone (`PromptBuilder.alone_view`).
A sample whose perplexity is not finite under either model is not scored: its record says why
(`rejected`) and the merge quarantines it (a NaN or an overflow is not a perplexity of 1.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from longcurate.core.engine import finite_ppl
from longcurate.core.errors import UserError
from longcurate.select.inputs import Prepared, PromptBuilder


@dataclass
class ShortModel:
    """How θ_A differs from θ_B: its label, the engine that runs it and the window it sees."""

    label: str
    engine: Any  # ScoringEngine over θ_A (may be θ_B's engine when only the window differs)
    window: int | None
    same_as_b: bool  # same weights and RoPE as θ_B: inputs that fit the window reuse θ_B's result


def rope_overrides(name: str, rope_scaling: dict[str, Any], allow_download: bool = False,
                   trust_remote_code: bool = False) -> dict[str, Any]:
    """Config overrides that give a checkpoint another RoPE. transformers 5 keeps RoPE settings in
    `config.rope_parameters` (with `rope_theta` inside), so the given keys are merged into it."""
    from longcurate.core.models import load_config

    conf = load_config(name, allow_download, trust_remote_code)
    params = dict(getattr(conf, "rope_parameters", None) or {})
    extra = dict(rope_scaling)
    if "type" in extra and "rope_type" not in extra:
        extra["rope_type"] = extra.pop("type")
    params.update(extra)
    params.setdefault("rope_theta", getattr(conf, "rope_theta", 10000.0))
    return {"rope_parameters": params}


def check_same_tokenizer(tok_a, tok_b, name_a: str, name_b: str,
                         probe: str = "Homologous models: 12 345 tokens, ünïcode, 中文, \n\tcode()") -> None:
    """HMG compares the two models' perplexity of the same tokens, so θ_A must tokenize as θ_B: the
    same vocabulary (token -> id) and the same ids for a probe text. Raises UserError otherwise."""
    va, vb = tok_a.get_vocab(), tok_b.get_vocab()
    if va != vb:
        only_a, only_b = sorted(set(va) - set(vb))[:3], sorted(set(vb) - set(va))[:3]
        moved = sorted(k for k in set(va) & set(vb) if va[k] != vb[k])[:3]
        raise UserError(f"select.model_a {name_a!r} and θ_B {name_b!r} have different vocabularies "
                        f"({len(va)} vs {len(vb)} tokens; only in θ_A: {only_a}, only in θ_B: {only_b}, "
                        f"other ids: {moved}); HMG needs homologous models with one tokenizer")
    ids_a = tok_a(probe, add_special_tokens=False)["input_ids"]
    ids_b = tok_b(probe, add_special_tokens=False)["input_ids"]
    if ids_a != ids_b:
        raise UserError(f"select.model_a {name_a!r} and θ_B {name_b!r} tokenize the same text differently "
                        f"({ids_a[:8]} vs {ids_b[:8]}); HMG needs homologous models with one tokenizer")


def short_window_of(window: int | None, model) -> int:
    """The short model's usable context, for the diagnostics' "gold beyond the window" label."""
    if window:
        return int(window)
    params = getattr(model.config, "rope_parameters", None) or {}
    return int(params.get("original_max_position_embeddings") or model.config.max_position_embeddings)


def short_model_nll(batch: list[Prepared], builder: PromptBuilder, short: ShortModel) -> tuple[dict[int, Any], list[int]]:
    """θ_A's NLLResults by position in the batch, for the samples where θ_A's input or model differs
    from θ_B's (the others reuse θ_B's result), and θ_A's input length per sample."""
    views = [builder.window_view(p, short.window)[:2] if short.window else (p.input_ids, p.response_start)
             for p in batch]
    need = [i for i, (ids, _) in enumerate(views) if not (short.same_as_b and len(ids) == len(batch[i].input_ids))]
    results = short.engine.response_nll([batch[i].item(views[i][0], views[i][1], []) for i in need]) if need else []
    return dict(zip(need, results)), [len(ids) for ids, _ in views]


def hmg_records(batch: list[Prepared], builder: PromptBuilder, engine_b, short: ShortModel,
                model_b: str, short_window: int, res_b: list | None = None) -> list[dict[str, Any]]:
    """Score a chunk under both models; one record per sample (normalisation comes at merge).
    `res_b`: θ_B's NLLResults for the chunk when already computed (the select stage takes them from
    the forward that also measures CAM's attention); otherwise θ_B runs here. θ_B also scores each
    response alone (IFD's PPL(y))."""
    if res_b is None:
        res_b = engine_b.response_nll([p.item() for p in batch])
    elif len(res_b) != len(batch) or any(r.id != p.id for r, p in zip(res_b, batch)):
        raise ValueError("res_b must hold one θ_B result per sample of the batch, in order")
    res_a, len_a = short_model_nll(batch, builder, short)
    alone = engine_b.response_nll([p.item(*builder.alone_view(p), []) for p in batch])
    out = []
    for i, p in enumerate(batch):
        a, b, y = res_a.get(i, res_b[i]), res_b[i], alone[i]
        if not a.n_tokens == b.n_tokens == y.n_tokens:
            raise RuntimeError(f"{p.id}: response tokens differ: θ_A {a.n_tokens}, θ_B {b.n_tokens}, alone {y.n_tokens}")
        nll = {"a": a.nll, "b": b.nll, "b_alone": y.nll}
        ppl = {k: finite_ppl(v) for k, v in nll.items()}
        ifd = finite_ppl(b.nll - y.nll)
        bad = [f"ppl_{k} from nll_{k}={nll[k]!r}" for k, v in ppl.items() if not math.isfinite(v)]
        if bad or not math.isfinite(ifd):
            out.append({"id": p.id, "field": "response", "rejected": "non-finite perplexity: " + (
                ", ".join(bad) or f"ifd from nll_b - nll_b_alone = {b.nll - y.nll!r}")})
            continue
        rec: dict[str, Any] = {
            "id": p.id,
            "nll_a": a.nll, "ppl_a": ppl["a"], "nll_b": b.nll, "ppl_b": ppl["b"],
            "nll_b_alone": y.nll, "ppl_b_alone": ppl["b_alone"], "ifd": ifd,
            "n_response_tokens": b.n_tokens,
            "n_tokens": len(p.input_ids), "n_tokens_a": len_a[i],
            "model_a": short.label, "window_a": short.window, "model_b": model_b, "window_b": None,
            "prompt_format": builder.format, "truncated": p.truncated,
        }
        if p.gold_char_start is not None:
            _, _, first = builder.window_view(p, short_window)
            rec["gold_beyond_window"] = bool(first is None or p.gold_char_start < first)
        out.append(rec)
    return out


def minmax(values: list[float]) -> list[float]:
    """Min-max normalisation to [0, 1]; a constant column maps to 0. Values must be finite (a sample
    with a non-finite perplexity is quarantined when scored, never normalised to an edge)."""
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"min-max normalisation of non-finite values {bad[:3]}")
    if not values:
        return []
    lo, hi = min(values), max(values)
    span = hi - lo
    return [(v - lo) / span if span > 0 else 0.0 for v in values]


def finalize_hmg(records: list[dict[str, Any]], scale: str = "ppl") -> list[dict[str, Any]]:
    """Add `norm_ppl_a`, `norm_ppl_b` and `hmg = norm(PPL_A) − norm(PPL_B)` over the whole dataset.

    `scale: ppl` is the paper's definition. PPL is heavy-tailed (a 1-token answer can have a PPL of
    1e5 while most sit below 50), so one outlier squeezes every other sample towards 0 after min-max;
    `scale: log` normalises log PPL (= the mean NLL) instead, which keeps the spread."""
    key_a, key_b = {"ppl": ("ppl_a", "ppl_b"), "log": ("nll_a", "nll_b")}[scale]  # `select.config.HMG_SCALES`
    na = minmax([r[key_a] for r in records])
    nb = minmax([r[key_b] for r in records])
    out = []
    for r, a, b in zip(records, na, nb):
        r = dict(r)
        r["norm_ppl_a"], r["norm_ppl_b"], r["hmg"] = a, b, a - b
        out.append(r)
    return out
