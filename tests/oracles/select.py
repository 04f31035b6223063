"""Straightforward references the select engine is tested and benchmarked against (test oracles:
they live under tests/, not in the library).

One sample per forward, the model's ordinary API, nothing clever: full-vocabulary logits with
`labels` masked to the response for NLL, and eager attention with `output_attentions=True` for
segment attention (O(N^2) memory: only for short inputs)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from longcurate.core.engine import NLLResult, ScoreItem, attn_implementation, validate_item


def reference_response_nll(model, items: Sequence[ScoreItem], device=None) -> list[NLLResult]:
    """HF forward per sample with `labels` = -100 outside the response; `loss` is the mean NLL."""
    import torch

    device = device or next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for it in items:
            validate_item(it)
            ids = torch.tensor([it.input_ids], device=device)
            labels = ids.clone()
            labels[:, :it.response_start] = -100
            loss = model(input_ids=ids, labels=labels, use_cache=False).loss
            n = len(it.input_ids) - it.response_start
            out.append(NLLResult(it.id, float(loss.double()) * n, n))
    return out


def reference_segment_attention(model, items: Sequence[ScoreItem], layers: list[int] | None = None,
                                normalize: bool = True) -> list[np.ndarray]:
    """Eager attention with `output_attentions=True`, one sample per forward: per layer the
    (heads, N, N) probabilities; take the response query rows, sum each segment's key columns,
    average over heads, response rows and layers, then normalise over segments."""
    import torch

    device = next(model.parameters()).device
    n_layers = model.config.num_hidden_layers
    chosen = sorted({l % n_layers for l in (range(n_layers) if layers is None else layers)})
    out = []
    with torch.inference_mode(), attn_implementation(model, "eager"):
        for it in items:
            validate_item(it, need_segments=True)
            ids = torch.tensor([it.input_ids], device=device)
            attns = model(input_ids=ids, output_attentions=True, use_cache=False).attentions
            v = np.zeros(len(it.segment_spans), dtype=np.float64)
            for layer in chosen:
                a = attns[layer][0].double()  # (heads, N, N)
                rows = a[:, it.response_start:, :]  # (heads, R, N)
                per_key = rows.mean(dim=(0, 1))  # averaged over heads and response tokens
                for s, (start, end) in enumerate(it.segment_spans):
                    v[s] += float(per_key[start:end].sum()) / len(chosen)
            if normalize and v.sum() > 0:
                v = v / v.sum()
            out.append(v)
    return out


def released_segment_ppl(model, rows: Sequence[tuple[list[int], int]]) -> list[float]:
    """GATEAU's released segment perplexity (`compute_single_ppl` / `compute_ppl` of
    select/cam/run_batch_multi_process.py), transcribed: labels -100 except the last R tokens, a
    per-position cross-entropy (`reduction='none'`: an ignored position counts 0), the mean over all
    L - 1 shifted positions, exp. Each row is (input_ids, response_start)."""
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for ids, r0 in rows:
            x = torch.tensor([ids], device=device)
            labels = x.clone()
            labels[:, :r0] = -100
            logits = model(input_ids=x, use_cache=False).logits.float()
            loss = torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:], reduction="none")
            out.append(float(torch.exp(loss[-(len(ids) - 1):].mean())))
    return out


def released_segment_attention(model, item: ScoreItem) -> np.ndarray:
    """GATEAU's released segment attention (`compute_sentence_attn` with its xformers attention class),
    transcribed for one sample: each layer's attention probabilities of the response query rows,
    averaged over heads, then the MEAN over each segment's keys, averaged over the response rows; here
    also averaged over layers (the release stores one row per layer) and normalised over segments."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode(), attn_implementation(model, "eager"):
        attns = model(input_ids=torch.tensor([item.input_ids], device=device), output_attentions=True,
                      use_cache=False).attentions
    v = np.zeros(len(item.segment_spans), dtype=np.float64)
    for a in attns:
        rows = a[0].double().mean(dim=0)[item.response_start:]  # heads averaged: (R, N)
        for s, (start, end) in enumerate(item.segment_spans):
            v[s] += float(rows[:, start:end].mean(dim=-1).mean()) / len(attns)
    return v / v.sum()
