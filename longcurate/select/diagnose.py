"""Do the scores find what synth planted? (synthesized data only, where `gold` is known)

- top-importance = gold: among `fine` samples whose gold segment was kept, how often the segment with
  the highest importance overlaps the gold span; the same for the top-attention segment;
- hmg AUROC for the label "the gold evidence starts before the short model's window", i.e. θ_A cannot
  see it: a good HMG puts those samples on top.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from longcurate.select.rank import average_ranks


def auroc(scores: list[float], labels: list[bool]) -> float:
    """Area under the ROC curve (Mann–Whitney U; ties count one half); nan without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = average_ranks(s)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def top_hits(cam: list[dict[str, Any]], kinds: dict[str, str], key: str, kind: str = "fine") -> tuple[int, int, int]:
    """(hits, counted, gold not among the kept segments) for the argmax of `key` over segments."""
    hits = counted = dropped = 0
    for r in cam:
        if kinds.get(r["id"]) != kind:
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


def diagnose(kinds: dict[str, str], hmg: list[dict[str, Any]], cam: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The diagnostics as a dict (fractions are nan when nothing qualifies)."""
    out: dict[str, Any] = {}
    for key, name in (("importance", "top_importance_gold"), ("segment_attn", "top_attention_gold")):
        for kind in ("fine", "multihop"):
            hits, counted, dropped = top_hits(cam or [], kinds, key, kind)
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


def format_report(d: dict[str, Any]) -> str:
    def pct(v: float) -> str:
        return "n/a" if v != v else f"{100 * v:.1f}%"

    return "\n".join([
        f"top-importance segment = gold (fine): {pct(d['top_importance_gold'])} of {d['top_importance_gold_n']}"
        f" (gold segment not kept by max_segments: {d['gold_not_kept_fine']})",
        f"top-attention segment = gold (fine):  {pct(d['top_attention_gold'])} of {d['top_attention_gold_n']}",
        f"multihop: importance {pct(d['top_importance_gold_multihop'])}, attention "
        f"{pct(d['top_attention_gold_multihop'])} of {d['top_importance_gold_multihop_n']}",
        f"hmg AUROC for 'gold beyond the short window': {d['hmg_auroc_gold_beyond_window']:.3f} "
        f"({d['hmg_auroc_n_pos']} beyond / {d['hmg_auroc_n_neg']} inside; without short samples "
        f"{d['hmg_auroc_long_only']:.3f})"
        + (f"; with select.hmg_scale=log: {d['hmg_log_auroc_gold_beyond_window']:.3f}"
           if "hmg_log_auroc_gold_beyond_window" in d else ""),
    ])
