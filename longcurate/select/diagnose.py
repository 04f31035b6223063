"""Do the scores find what synth planted? (synthesized data only, where `gold` is known; on data
without gold spans, such as LongAlign's, the report says so and gives only the CAS figures)

- top-importance = gold: among `fine` samples whose gold segment was kept, how often the segment with
  the highest importance overlaps the gold span; the same for the top-attention segment;
- hmg AUROC for the label "the gold evidence starts before the short model's window", i.e. θ_A cannot
  see it: a good HMG puts those samples on top.

And, on any data, is CAS more than a length proxy? When segment NLLs differ by fractions of a nat,
importance is almost uniform and `1 − cos` mostly measures how peaked the attention is, which grows
with the number of segments, i.e. with length. Reported: Spearman of CAS with length (prompt tokens)
and with the number of segments it compares, and the mean entropy of the importance distribution
(divided by log(segments): 1 = uniform); the report says in words when CAS is mostly a length proxy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from longcurate.select.rank import spearman

LENGTH_PROXY_RHO = 0.7  # |Spearman| of CAS with length or segments from which CAS "orders as length does"
NEAR_UNIFORM = 0.95  # mean normalised importance entropy from which importance carries little


def auroc(scores: list[float], labels: list[bool]) -> float:
    """Area under the ROC curve (`sklearn.metrics.roc_auc_score`; ties count one half); nan without
    both classes (scikit-learn would raise)."""
    y = np.asarray(labels, dtype=bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(scores, dtype=np.float64)))


def top_hits(cam: list[dict[str, Any]], kinds: dict[str, str], key: str, kind: str = "fine",
             gold_ids: set[str] | None = None) -> tuple[int, int, int]:
    """(hits, counted, gold not among the kept segments) for the argmax of `key` over segments, over
    the samples that have gold spans (`gold_ids`; None: every sample)."""
    hits = counted = dropped = 0
    for r in cam:
        if kinds.get(r["id"]) != kind or (gold_ids is not None and str(r["id"]) not in gold_ids):
            continue
        gold = r.get("gold_segments")
        if gold is None:
            continue
        if not gold:
            dropped += 1
            continue
        counted += 1
        hits += int(int(np.argmax(r[key])) in set(gold))
    return hits, counted, dropped


def entropy_ratio(p: list[float]) -> float:
    """Entropy of a distribution over n segments divided by log n (1 = uniform); nan for n < 2."""
    q = np.asarray(p, dtype=np.float64)
    if len(q) < 2:
        return float("nan")
    q = q[q > 0] / q.sum()
    return float(-(q * np.log(q)).sum() / np.log(len(p)))


def cas_sanity(hmg: list[dict[str, Any]], cam: list[dict[str, Any]]) -> dict[str, Any]:
    """CAS against length and segment count, and how flat importance is (see the module doc)."""
    length = {str(r["id"]): r["n_tokens"] for r in hmg if "n_tokens" in r}
    rows = [r for r in cam if str(r["id"]) in length and r.get("cas") is not None]
    cas = [float(r["cas"]) for r in rows]
    ent = [entropy_ratio(r["importance"]) for r in rows]
    out: dict[str, Any] = {
        "cas_n": len(rows),
        "cas_spearman_length": spearman(cas, [length[str(r["id"])] for r in rows]),
        "cas_spearman_segments": spearman(cas, [len(r["importance"]) for r in rows]),
        "importance_entropy": float(np.nanmean(ent)) if any(e == e for e in ent) else float("nan"),
    }
    rho = max(abs(out["cas_spearman_length"]), abs(out["cas_spearman_segments"]))
    out["cas_length_proxy"] = bool(rho >= LENGTH_PROXY_RHO)
    return out


def gold_figures(kinds: dict[str, str], hmg: list[dict[str, Any]], cam: list[dict[str, Any]] | None,
                 gold_ids: set[str] | None = None) -> dict[str, Any]:
    """The figures that compare the scores with the gold segments (fractions are nan when nothing
    qualifies)."""
    out: dict[str, Any] = {}
    for key, name in (("importance", "top_importance_gold"), ("segment_attn", "top_attention_gold")):
        for kind in ("fine", "multihop"):
            hits, counted, dropped = top_hits(cam or [], kinds, key, kind, gold_ids)
            prefix = name if kind == "fine" else f"{name}_{kind}"
            out[prefix] = hits / counted if counted else float("nan")
            out[f"{prefix}_n"] = counted
            if key == "importance":
                out[f"gold_not_kept_{kind}"] = dropped
    labelled = [r for r in hmg if "gold_beyond_window" in r and "hmg" in r]
    y = [bool(r["gold_beyond_window"]) for r in labelled]
    out["hmg_auroc_gold_beyond_window"] = auroc([float(r["hmg"]) for r in labelled], y)
    out["hmg_auroc_n_pos"] = sum(y)
    out["hmg_auroc_n_neg"] = len(y) - sum(y)
    # The same label against the log-scale variant (`select.hmg_scale: log`), from the stored NLLs.
    both = [r for r in labelled if "nll_a" in r and "nll_b" in r]
    if both:
        from longcurate.select.hmg import finalize_hmg

        log_hmg = [r["hmg"] for r in finalize_hmg(both, "log")]
        out["hmg_log_auroc_gold_beyond_window"] = auroc(log_hmg, [bool(r["gold_beyond_window"]) for r in both])
    non_short = [r for r in labelled if kinds.get(r["id"]) != "short"]
    out["hmg_auroc_long_only"] = auroc([float(r["hmg"]) for r in non_short],
                                       [bool(r["gold_beyond_window"]) for r in non_short])
    return out


def diagnose(kinds: dict[str, str], hmg: list[dict[str, Any]], cam: list[dict[str, Any]] | None,
             gold_ids: set[str] | None = None) -> dict[str, Any]:
    """The diagnostics as a dict: the gold figures when some sample has gold spans (`gold_ids`, None:
    assume every sample has), else `gold_samples: 0` only; the CAS sanity figures when CAM ran."""
    out: dict[str, Any] = gold_figures(kinds, hmg, cam, gold_ids) if gold_ids is None or gold_ids else {"gold_samples": 0}
    if cam:
        out.update(cas_sanity(hmg, cam))
    return out


def cas_words(d: dict[str, Any]) -> str:
    """The CAS sanity figures in one sentence that says what they mean."""
    figures = (f"Spearman {d['cas_spearman_length']:.2f} with length, {d['cas_spearman_segments']:.2f} with the "
               f"number of segments; mean importance entropy {d['importance_entropy']:.2f} of uniform; "
               f"{d['cas_n']} samples")
    if d["cas_length_proxy"]:
        return (f"CAS is mostly a length proxy on this data ({figures}): it orders samples much as the `length` "
                f"baseline does (|Spearman| >= {LENGTH_PROXY_RHO}).")
    if d["importance_entropy"] >= NEAR_UNIFORM:
        return (f"importance is nearly uniform ({figures}): 1 - cos mostly measures how peaked the attention is; "
                "a select.importance_temperature below 1 sharpens it.")
    return f"CAS is not mainly a length proxy here ({figures})."


def format_report(d: dict[str, Any]) -> str:
    """The diagnostics in words: the gold-based figures where the data has gold spans, then CAS's."""
    def pct(v: float) -> str:
        return "n/a" if v != v else f"{100 * v:.1f}%"

    lines = []
    if d.get("gold_samples") == 0:
        lines.append("no gold spans in the input: nothing to check the scores against (top-importance = gold "
                     "and the HMG AUROC need synthesized samples, which record where the answer's evidence is)")
    elif d["top_importance_gold_n"] or d["top_importance_gold_multihop_n"]:
        lines += [
            f"top-importance segment = gold (fine): {pct(d['top_importance_gold'])} of {d['top_importance_gold_n']}"
            f" (gold segment not kept by max_segments: {d['gold_not_kept_fine']})",
            f"top-attention segment = gold (fine):  {pct(d['top_attention_gold'])} of {d['top_attention_gold_n']}",
            f"multihop: importance {pct(d['top_importance_gold_multihop'])}, attention "
            f"{pct(d['top_attention_gold_multihop'])} of {d['top_importance_gold_multihop_n']}"]
    if d.get("hmg_auroc_n_pos", 0) + d.get("hmg_auroc_n_neg", 0):
        lines.append(
            f"hmg AUROC for 'gold beyond the short window': {d['hmg_auroc_gold_beyond_window']:.3f} "
            f"({d['hmg_auroc_n_pos']} beyond / {d['hmg_auroc_n_neg']} inside; without short samples "
            f"{d['hmg_auroc_long_only']:.3f})"
            + (f"; with select.hmg_scale=log: {d['hmg_log_auroc_gold_beyond_window']:.3f}"
               if "hmg_log_auroc_gold_beyond_window" in d else ""))
    if "cas_n" in d:
        lines.append(cas_words(d))
    return "\n".join(lines) or "nothing to diagnose: no gold spans and no CAM scores"
