"""Loss weighting for long-context SFT, independent of the GPU count and the grad-accum split.

Every label position t carries a weight w_t (0 where the label is -100):
- `token`:    w_t = 1, and the step's loss is  sum_t w_t * ce_t / (response tokens in the global batch);
- `sequence`: w_t = 1 / n_s (n_s: response tokens of t's sample), and the loss is
              sum_t w_t * ce_t / (samples in the global batch)  -- every sample weighs the same,
              packed or not (the LongAlign correction).
The collator stores `loss_weights` and `num_items` (tokens or samples) per micro-batch; the trainer
sums `num_items` over the step's micro-batches and all ranks before the first forward, so each
micro-batch contributes `its weighted sum / global items`. Gradients then add up over micro-batches
and average over ranks (x world size undoes that average) to exactly the global-batch value: no GPU
count is baked into the weights.
"""

from __future__ import annotations

import functools

from typing import Any, Sequence

from longcurate.core.errors import UserError
from longcurate.train.config import WEIGHTINGS

IGNORE = -100


def sample_weights(labels: Sequence[int], mode: str) -> tuple[list[float], int]:
    """Per-position weights of one sample (its first label is never predicted) and the number of
    items it adds to the global count: response tokens (`token`) or 1 (`sequence`; 0 if it has none)."""
    if mode not in WEIGHTINGS:
        raise UserError(f"unknown loss_weighting {mode!r}; expected one of {WEIGHTINGS}")
    n = sum(1 for lab in labels[1:] if lab != IGNORE)
    if n == 0:
        return [0.0] * len(labels), 0
    w = 1.0 if mode == "token" else 1.0 / n
    weights = [0.0] + [w if lab != IGNORE else 0.0 for lab in labels[1:]]
    return weights, (n if mode == "token" else 1)


def weighted_ce_sum(logits, targets, weights):
    """sum_t w_t * CE(logits_t, target_t) in fp32 (rows already selected: [N, V], [N], [N])."""
    import torch.nn.functional as F

    ce = F.cross_entropy(logits.float(), targets.clamp_min(0), reduction="none")
    return (ce * weights.to(ce.dtype)).sum()


def prediction_mask(weights):
    """Positions whose output predicts a weighted label: position t predicts label t + 1."""
    import torch

    mask = torch.zeros_like(weights, dtype=torch.bool)
    mask[:, :-1] = weights[:, 1:] != 0
    if not mask.any():  # keep the graph connected (every rank must reach backward with all params)
        mask[0, 0] = True
    return mask


def causal_lm_loss_sum(model, batch: dict[str, Any]):
    """Run `model` on a collated micro-batch and return (weighted loss sum, outputs).

    The LM head runs only on the positions that predict response tokens (`logits_to_keep` with a
    boolean mask), so full-vocabulary logits over a long context are never built."""
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "loss_weights", "num_items")}
    labels, weights = batch["labels"], batch["loss_weights"]
    mask = prediction_mask(weights)
    if _boolean_logits_to_keep():
        outputs = model(**inputs, logits_to_keep=mask, use_cache=False)
        logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])  # [N, V], rows in mask order
    else:  # older transformers (e.g. 5.17) take only 1-D position indices: keep the union of columns
        keep = mask.any(0).nonzero().squeeze(1)
        outputs = model(**inputs, logits_to_keep=keep, use_cache=False)
        logits = outputs.logits[mask[:, keep]]  # the same rows, in the same row-major order
    targets_mask = mask.roll(1, dims=1)  # label t + 1 for position t (mask[:, -1] is always False)
    targets = labels[targets_mask]
    w = weights[targets_mask]
    return weighted_ce_sum(logits, targets, w), outputs


@functools.cache
def _boolean_logits_to_keep() -> bool:
    """Whether this transformers version accepts a boolean mask as `logits_to_keep` (5.24 does; 5.17,
    the GPU image's version, indexes with it and fails). Checked once, on its public helper."""
    from transformers import modeling_utils

    return hasattr(modeling_utils, "slice_logits_to_keep")
