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

import math
from array import array
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from sklearn.metrics import roc_auc_score

from longcurate.select.rank import spearman

LENGTH_PROXY_RHO = 0.7  # |Spearman| of CAS with length or segments from which CAS "orders as length does"
NEAR_UNIFORM = 0.95  # mean normalised importance entropy from which importance carries little
GOLD_KINDS = ("fine", "multihop")  # the question kinds whose top segments are checked against gold


def auroc(scores: list[float], labels: list[bool]) -> float:
    """Area under the ROC curve (`sklearn.metrics.roc_auc_score`; ties count one half); nan without
    both classes (scikit-learn would raise)."""
    y = np.asarray(labels, dtype=bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(scores, dtype=np.float64)))


@dataclass
class HmgFigures:
    """What diagnostics read of the HMG records, as columns: for the records labelled "gold beyond the
    window", hmg, the label, the NLLs (NaN when absent) and whether the sample is `short`; every
    record's token count by id (CAS against length). A few bytes a record."""

    hmg: array = field(default_factory=lambda: array("d"))
    label: array = field(default_factory=lambda: array("b"))
    nll_a: array = field(default_factory=lambda: array("d"))
    nll_b: array = field(default_factory=lambda: array("d"))
    short: array = field(default_factory=lambda: array("b"))
    n_tokens: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def collect(cls, records: Iterable[dict[str, Any]], kinds: dict[str, str]) -> "HmgFigures":
        out = cls()
        for r in records:
            if "n_tokens" in r:
                out.n_tokens[str(r["id"])] = r["n_tokens"]
            if "gold_beyond_window" in r and "hmg" in r:
                out.hmg.append(float(r["hmg"]))
                out.label.append(bool(r["gold_beyond_window"]))
                out.nll_a.append(float(r.get("nll_a", math.nan)))
                out.nll_b.append(float(r.get("nll_b", math.nan)))
                out.short.append(kinds.get(r["id"]) == "short")
        return out


@dataclass
class CamTally:
    """What diagnostics read of the CAM records, one record at a time: per question kind and figure
    (importance, attention) how often the top segment is a gold one, and the CAS, importance entropy,
    segment count and length of each record with a length. The per-segment lists are never kept."""

    kinds: dict[str, str]
    gold_ids: set[str] | None
    n_tokens: dict[str, Any]
    seen: int = 0
    hits: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (figure, kind) -> [hits, counted, dropped]
    sanity: dict[str, array] = field(default_factory=lambda: {k: array("d") for k in ("cas", "entropy", "segments", "length")})

    def add(self, r: dict[str, Any]) -> None:
        self.seen += 1
        kind = self.kinds.get(r["id"])
        gold = r.get("gold_segments")
        if kind in GOLD_KINDS and gold is not None and (self.gold_ids is None or str(r["id"]) in self.gold_ids):
            for key in ("importance", "segment_attn"):
                tally = self.hits.setdefault((key, kind), [0, 0, 0])
                if not gold:
                    tally[2] += 1
                else:
                    tally[1] += 1
                    tally[0] += int(int(np.argmax(r[key])) in set(gold))
        length = self.n_tokens.get(str(r["id"]))
        if length is not None and r.get("cas") is not None:
            for k, v in (("cas", float(r["cas"])), ("entropy", entropy_ratio(r["importance"])),
                         ("segments", len(r["importance"])), ("length", length)):
                self.sanity[k].append(v)

    @classmethod
    def collect(cls, records: Iterable[dict[str, Any]], kinds: dict[str, str], gold_ids: set[str] | None,
                n_tokens: dict[str, Any]) -> "CamTally":
        out = cls(kinds, gold_ids, n_tokens)
        for r in records:
            out.add(r)
        return out


def entropy_ratio(p: list[float]) -> float:
    """Entropy of a distribution over n segments divided by log n (1 = uniform); nan for n < 2."""
    q = np.asarray(p, dtype=np.float64)
    if len(q) < 2:
        return float("nan")
    q = q[q > 0] / q.sum()
    return float(-(q * np.log(q)).sum() / np.log(len(p)))


def cas_sanity(hmg: Iterable[dict[str, Any]], cam: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """CAS against length and segment count, and how flat importance is (see the module doc)."""
    return sanity_figures(CamTally.collect(cam, {}, set(), HmgFigures.collect(hmg, {}).n_tokens))


def sanity_figures(tally: CamTally) -> dict[str, Any]:
    """`cas_sanity` from a tally of the CAM records."""
    cas, ent = list(tally.sanity["cas"]), list(tally.sanity["entropy"])
    out: dict[str, Any] = {
        "cas_n": len(cas),
        "cas_spearman_length": spearman(cas, list(tally.sanity["length"])),
        "cas_spearman_segments": spearman(cas, list(tally.sanity["segments"])),
        "importance_entropy": float(np.nanmean(ent)) if any(e == e for e in ent) else float("nan"),
    }
    rho = max(abs(out["cas_spearman_length"]), abs(out["cas_spearman_segments"]))
    out["cas_length_proxy"] = bool(rho >= LENGTH_PROXY_RHO)
    return out


def gold_figures(hmg: HmgFigures, tally: CamTally) -> dict[str, Any]:
    """The figures that compare the scores with the gold segments (fractions are nan when nothing
    qualifies)."""
    out: dict[str, Any] = {}
    for key, name in (("importance", "top_importance_gold"), ("segment_attn", "top_attention_gold")):
        for kind in GOLD_KINDS:
            hits, counted, dropped = tally.hits.get((key, kind), [0, 0, 0])
            prefix = name if kind == "fine" else f"{name}_{kind}"
            out[prefix] = hits / counted if counted else float("nan")
            out[f"{prefix}_n"] = counted
            if key == "importance":
                out[f"gold_not_kept_{kind}"] = dropped
    y = [bool(v) for v in hmg.label]
    out["hmg_auroc_gold_beyond_window"] = auroc(list(hmg.hmg), y)
    out["hmg_auroc_n_pos"] = sum(y)
    out["hmg_auroc_n_neg"] = len(y) - sum(y)
    # The same label against the log-scale variant (`select.hmg_scale: log`), from the stored NLLs.
    both = [k for k in range(len(y)) if not (math.isnan(hmg.nll_a[k]) or math.isnan(hmg.nll_b[k]))]
    if both:
        from longcurate.select.hmg import minmax

        log_hmg = [a - b for a, b in zip(minmax([hmg.nll_a[k] for k in both]), minmax([hmg.nll_b[k] for k in both]))]
        out["hmg_log_auroc_gold_beyond_window"] = auroc(log_hmg, [y[k] for k in both])
    long_only = [k for k in range(len(y)) if not hmg.short[k]]
    out["hmg_auroc_long_only"] = auroc([hmg.hmg[k] for k in long_only], [y[k] for k in long_only])
    return out


def diagnose(kinds: dict[str, str], hmg: Iterable[dict[str, Any]], cam: Iterable[dict[str, Any]] | None,
             gold_ids: set[str] | None = None) -> dict[str, Any]:
    """The diagnostics as a dict: the gold figures when some sample has gold spans (`gold_ids`, None:
    assume every sample has), else `gold_samples: 0` only; the CAS sanity figures when CAM ran. The
    records may stream from their files: each side is read once, a record at a time (`HmgFigures`,
    `CamTally`)."""
    h = HmgFigures.collect(hmg, kinds)
    tally = CamTally.collect(cam if cam is not None else [], kinds, gold_ids, h.n_tokens)
    out: dict[str, Any] = gold_figures(h, tally) if gold_ids is None or gold_ids else {"gold_samples": 0}
    if tally.seen:
        out.update(sanity_figures(tally))
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
