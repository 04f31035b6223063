"""Every selection figure of the project, derived from ONE scoring of the planted pool.

`select score hmg` + `cam` (run together: one θ_B forward per sample gives HMG's NLL and CAM's
attention) store the raw per-sample figures: θ_A's and θ_B's response NLL, θ_B's NLL of the response
alone, each kept segment's NLL (importance at temperature 1) and the segment attention. Every figure
below is computed from those, with select's own functions, so the audit measures exactly what
`select rank` / `select budget` would order by:

    hmg-ppl, hmg-log          HMG with min-max of PPL (the paper) or of log PPL (`hmg.finalize_hmg`)
    cas-<metric>              CAS with cos / kl / js at importance temperature 1 (`cam.cas`)
    cas-<metric>-T<t>         CAS of the configured metric at other importance temperatures (`cam.temper`)
    cas-<metric>-Trelease     CAS with the released scripts' importance: each segment's loss averaged over
                              all L - 1 positions of its row (masked ones count 0), i.e. temperature (L-1)/R
    gateau-rank, gateau-paper the final score (`rank.rank_scores`) under each normalisation, with the
                              configured hmg_scale, cas_metric and importance_temperature
    ifd, perplexity, length   GATEAU's baselines (`budget.method_orders`'s orders as scores)
    random                    a seeded uniform score

Higher = selected first, as in every budget order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from longcurate.core.records import Sample
from longcurate.select.cam import cas, softmax, temper
from longcurate.select.hmg import finalize_hmg
from longcurate.select.inputs import PromptBuilder
from longcurate.select.rank import rank_scores

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun


@dataclass(frozen=True)
class Item:
    """One scored pool record: its type, the base sample it was planted from, what the Spearman figures
    correlate with."""

    id: str
    type: str
    base: str
    response_tokens: int
    evidence_offset: int | None  # tokens between the evidence and θ_A's view (far: > 0)


def ifd_score(ifd: float) -> float:
    """Cherry's order as a score: IFD <= 1 highest first, then IFD > 1 nearest 1 first (`budget.ifd_key`)."""
    return ifd if ifd <= 1.0 else -ifd


def release_importance(segment_ppl: list[float], row_tokens: list[int], response_tokens: int) -> np.ndarray:
    """The released importance: softmax of −(sum of the response's NLL) / (L_i − 1) per segment row of
    L_i tokens, i.e. −log PPL_i rescaled by R / (L_i − 1)."""
    nll = np.log(np.asarray(segment_ppl, dtype=np.float64))
    return softmax(-nll * response_tokens / (np.asarray(row_tokens, dtype=np.float64) - 1.0))


def cas_values(cam: list[dict[str, Any]], metric: str, temperature: float | str,
               rows: dict[str, list[int]] | None = None, response: dict[str, int] | None = None) -> dict[str, float]:
    """CAS per id with `metric` at an importance temperature (a number, or "release")."""
    out = {}
    for r in cam:
        if temperature == "release":
            importance = release_importance(r["segment_ppl"], rows[r["id"]], response[r["id"]])
        elif temperature == 1.0:
            importance = np.asarray(r["importance"], dtype=np.float64)
        else:
            importance = temper(r["importance"], float(temperature))
        out[r["id"]] = cas(importance, np.asarray(r["segment_attn"], dtype=np.float64), metric)
    return out


def figure_names(cfg: SelectRun) -> dict[str, str]:
    """The figures the criteria apply to: `gateau` (the configured normalisation), `hmg` (the configured
    scale) and `cas` (the configured metric and temperature)."""
    sel = cfg.select
    t = sel.importance_temperature
    return {"gateau": f"gateau-{sel.normalize}", "hmg": f"hmg-{sel.hmg_scale}",
            "cas": f"cas-{sel.cas_metric}" + ("" if t == 1.0 else f"-T{t:g}")}


def segment_rows(samples: dict[str, Sample], builder: PromptBuilder) -> dict[str, list[int]]:
    """Token count of each kept segment's row (segment + instruction + response), as CAM scored them."""
    return {i: [len(ids) for ids, _ in builder.segment_rows(builder.prepare(s))] for i, s in samples.items()}


def compute_figures(cfg: SelectRun, ids: list[str], hmg: dict[str, dict], cam: dict[str, dict],
                    rows: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """name -> scores aligned with `ids` (every id has an HMG and a CAM record)."""
    sel, audit = cfg.select, cfg.select.audit
    h_recs = [hmg[i] for i in ids]
    c_recs = [cam[i] for i in ids]
    response = {i: int(hmg[i]["n_response_tokens"]) for i in ids}
    out: dict[str, dict[str, float]] = {}
    hmg_by_scale = {scale: {r["id"]: r["hmg"] for r in finalize_hmg(h_recs, scale)} for scale in ("ppl", "log")}
    for scale, values in hmg_by_scale.items():
        out[f"hmg-{scale}"] = values
    for metric in ("cos", "kl", "js"):
        out[f"cas-{metric}"] = cas_values(c_recs, metric, 1.0)
    temps = sorted({*audit.temperatures, sel.importance_temperature} - {1.0})
    for t in temps:
        out[f"cas-{sel.cas_metric}-T{t:g}"] = cas_values(c_recs, sel.cas_metric, t)
    if audit.release_temperature:
        out[f"cas-{sel.cas_metric}-Trelease"] = cas_values(c_recs, sel.cas_metric, "release", rows, response)
    configured_cas = out[figure_names(cfg)["cas"]]
    for normalize in ("rank", "paper"):
        out[f"gateau-{normalize}"] = gateau_scores(hmg_by_scale[sel.hmg_scale], configured_cas, sel.alpha, normalize)
    out["ifd"] = {i: ifd_score(float(hmg[i]["ifd"])) for i in ids}
    out["perplexity"] = {i: float(hmg[i]["ppl_b"]) for i in ids}
    out["length"] = {i: float(hmg[i]["n_tokens"]) for i in ids}
    rng = np.random.default_rng(cfg.seed)
    out["random"] = dict(zip(ids, rng.random(len(ids)).tolist()))
    return {name: np.array([values[i] for i in ids], dtype=np.float64) for name, values in out.items()}


def gateau_scores(hmg: dict[str, float], cas_by_id: dict[str, float], alpha: float, normalize: str) -> dict[str, float]:
    """The final score of `select rank` over the pool."""
    ranked, _ = rank_scores([{"id": i, "hmg": v} for i, v in hmg.items()],
                            [{"id": i, "cas": v} for i, v in cas_by_id.items()], alpha=alpha, normalize=normalize)
    return {r["id"]: r["score"] for r in ranked}


def pool_items(samples: dict[str, Sample], hmg: dict[str, dict], cam: dict[str, dict]) -> tuple[list[Item], int]:
    """The pool records with every raw figure, whole base samples only (a base sample one of whose
    types lacks a figure, e.g. CAM's "context shorter than one segment", is left out, so every type
    keeps the same base samples); returns the items and how many base samples were left out."""
    scored = {i for i in samples if i in hmg and i in cam}
    bases: dict[str, list[str]] = {}
    for i, s in samples.items():
        bases.setdefault(s.planted["base"], []).append(i)
    whole = {b for b, members in bases.items() if all(m in scored for m in members)}
    items = []
    for i, s in samples.items():
        p = s.planted
        if p["base"] in whole:
            offset = p.get("evidence_offset")
            items.append(Item(i, p["type"], p["base"], int(hmg[i]["n_response_tokens"]),
                              None if offset is None or not math.isfinite(offset) else int(offset)))
    return items, len(bases) - len(whole)


__all__ = ["Item", "ifd_score", "release_importance", "cas_values", "figure_names", "segment_rows",
           "compute_figures", "gateau_scores", "pool_items"]
