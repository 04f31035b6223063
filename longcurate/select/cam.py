"""CAM (Contextual Awareness Measurement) with θ_B.

importance: `softmax_i(IS_i)` with `IS_i = −log PPL(y | s_i, x)`, one short row per kept segment
(segment + instruction + response, cut from the same tokenization as the full prompt), batched
through the engine's `response_nll`. attention: the response rows' attention mass per segment over the
full prompt (engine `segment_attention`, or `nll_and_attention` when the select stage scores HMG's θ_B
in the same forward). `cas = 1 − cos(importance, attention)` — ours: the released
code never combines them (docs/design.md) — or `kl` = KL(importance ‖ attention), `js` = Jensen–Shannon.

Part files hold importance at temperature 1 (the definition above); the merge applies
`select.importance_temperature` T: importance_T = softmax(IS / T) ∝ importance^(1/T), and CAS again
(`finalize_cam`), so another T re-merges without scoring. T > 1 flattens importance, T < 1 sharpens it:
when segment NLLs differ by fractions of a nat, T < 1 keeps importance from being near uniform (where
1 − cos mostly measures how peaked the attention is, which grows with the number of segments).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from longcurate.core.engine import finite_ppl
from longcurate.select.config import CAS_METRICS
from longcurate.select.inputs import Prepared, PromptBuilder

_EPS = 1e-12


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p = np.clip(p, _EPS, None)
    q = np.clip(q, _EPS, None)
    return float(np.sum(p * np.log(p / q)))


def cas(importance: np.ndarray, attention: np.ndarray, metric: str = "cos") -> float:
    """How far the model's attention is from the segments that matter (higher = more influential)."""
    p = np.asarray(importance, dtype=np.float64)
    q = np.asarray(attention, dtype=np.float64)
    if metric == "cos":
        denom = float(np.linalg.norm(p) * np.linalg.norm(q))
        return 1.0 - (float(p @ q) / denom if denom > 0 else 0.0)
    if metric == "kl":
        return _kl(p / p.sum(), q / max(q.sum(), _EPS))
    if metric == "js":
        p, q = p / p.sum(), q / max(q.sum(), _EPS)
        m = 0.5 * (p + q)
        return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)
    raise ValueError(f"unknown cas metric {metric!r}; the metrics are {CAS_METRICS}")  # a score file's, not a config's


def segment_nll_rows(batch: list[Prepared], builder: PromptBuilder, engine) -> list[list[float]]:
    """Mean response NLL given each kept segment alone, per sample (all rows in one engine call)."""
    items, owner = [], []
    for k, p in enumerate(batch):
        for j, (ids, r0) in enumerate(builder.segment_rows(p)):
            items.append(p.item(ids, r0, []))
            items[-1].id = f"{p.id}#seg{p.segments[j]}"
            owner.append(k)
    results = engine.response_nll(items) if items else []
    out: list[list[float]] = [[] for _ in batch]
    for k, r in zip(owner, results):
        out[k].append(r.nll)
    return out


def cam_records(batch: list[Prepared], builder: PromptBuilder, engine, *, model: str,
                layers: list[int] | None = None, key_block: int = 1024, metric: str = "cos",
                attention: list[np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Importance, attention and CAS for a chunk of samples; one record per sample. `attention`:
    the samples' segment attention when already measured with these `layers` (the select stage
    takes it from the θ_B forward that also gives HMG's NLL); otherwise it is measured here."""
    if attention is not None and (len(attention) != len(batch)
                                  or any(len(a) != len(p.segment_spans) for a, p in zip(attention, batch))):
        raise ValueError("attention must hold one vector per sample of the batch, one value per kept segment")
    seg_nll = segment_nll_rows(batch, builder, engine)
    attn = attention if attention is not None else \
        engine.segment_attention([p.item() for p in batch], layers=layers, key_block=key_block)
    out = []
    for p, nlls, a in zip(batch, seg_nll, attn):
        a = np.asarray(a, dtype=np.float64)
        seg_ppl = [finite_ppl(v) for v in nlls]
        if not (np.isfinite(seg_ppl).all() and np.isfinite(a).all()):
            bad = "segment perplexity" if not np.isfinite(seg_ppl).all() else "segment attention"
            out.append({"id": p.id, "field": "context", "rejected": f"non-finite {bad}: CAS undefined"})
            continue
        importance = softmax(-np.asarray(nlls))  # IS_i = −log PPL_i = −mean NLL_i
        out.append({
            "id": p.id,
            "segments": p.segments, "num_segments_total": p.num_segments_total,
            "segment_ppl": seg_ppl,
            "importance": importance.tolist(),
            "segment_attn": a.tolist(),
            "cas": cas(importance, a, metric), "cas_metric": metric,
            "gold_segments": p.gold_segments,
            "model": model, "layers": layers, "prompt_format": builder.format,
        })
    return out


def temper(importance: list[float], temperature: float) -> np.ndarray:
    """softmax(IS / T) from the T = 1 importance softmax(IS): proportional to importance^(1/T)."""
    return softmax(np.log(np.clip(np.asarray(importance, dtype=np.float64), 1e-300, None)) / temperature)


def finalize_cam(records: list[dict[str, Any]], temperature: float = 1.0) -> list[dict[str, Any]]:
    """The merged CAM records under `select.importance_temperature`: at T = 1 unchanged; otherwise
    importance and CAS recomputed (with each record's metric) and T recorded."""
    if temperature == 1.0:
        return records
    out = []
    for r in records:
        imp = temper(r["importance"], temperature)
        out.append({**r, "importance": imp.tolist(), "importance_temperature": temperature,
                    "cas": cas(imp, np.asarray(r["segment_attn"], dtype=np.float64), r.get("cas_metric", "cos"))})
    return out
