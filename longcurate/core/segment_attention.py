"""Response-to-segment attention without an N x N matrix, through transformers' AttentionInterface.

`segment_attention_forward` is registered as the attention implementation `longcurate_segment`.
It computes each layer's output with SDPA exactly as the `sdpa` implementation does, and, when
the forward carries a `SegmentProbe` (keyword argument `segment_probe=`), it also measures, for
the response query rows only, softmax(q.k / sqrt(d)) against all keys of the row (causal, so pads
after the row are never seen) and reduces it straight into per-segment sums:

  pass 1, per key block: the running row max and normaliser (online softmax);
  pass 2, per key block: probabilities, summed over heads and response rows with weights
          1 / (heads x response tokens x layers) (one matrix-vector product), then
          `scatter_add_` into segments through a key->segment index (keys outside every segment
          go to a discard bin).

Keys before the batch's first response row are visible to every response row, so those blocks
skip the causal mask; the others mask keys after each row (pads of right-padded rows included).

Memory is O(heads x R x key_block) per layer, never O(N^2), and `output_attentions` is never used.
GQA: the R query rows of the `G` heads that share a key/value head are stacked, so each key block is
multiplied once per key/value head instead of being expanded G times.

How the function learns which rows to measure: transformers forwards extra keyword arguments of
the model's forward down to the attention function (`LlamaModel.forward(**kwargs)` ->
decoder layer -> attention module -> attention function), so the probe travels as the keyword
`segment_probe` of that one forward. No global state: concurrent forwards cannot mix their probes.
The probe is a plain object; the attention function accumulates into it and counts its calls, so
a model whose forward drops the keyword is detected (the engine raises) instead of giving zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


ATTN_NAME = "longcurate_segment"
_NEG = -1e30  # finite "minus infinity" for the running max, so fully masked blocks never give NaN


@dataclass
class SegmentProbe:
    """What one batch's segment measurement needs, and where it accumulates.

    q_pos:   (B, R) long, positions of the response query rows (padded rows repeat position 0)
    q_w:     (B, R) fp32, weight of each row: 1 / (R_b x layers) for real rows, 0 for padding
             (the 1 / heads is applied per layer, where the head count is known)
    key_seg: (B, L) long, segment of each key in [0, S) or S (the discard bin)
    acc:     (B, S + 1) fp64 per-segment sums
    """

    q_pos: torch.Tensor
    q_w: torch.Tensor
    key_seg: torch.Tensor
    acc: torch.Tensor
    layers: frozenset[int]
    key_block: int
    num_segments: list[int]
    first_q: int = 0  # the earliest response row of the batch: keys before it need no causal mask
    calls: int = 0  # layers measured so far

    @classmethod
    def build(cls, items: Sequence, layers: Sequence[int], key_block: int, device) -> "SegmentProbe":
        """Index tensors for a batch of ScoreItems (right-padded to the longest)."""
        B = len(items)
        L = max(len(it.input_ids) for it in items)
        R = max(len(it.input_ids) - it.response_start for it in items)
        S = max(len(it.segment_spans) for it in items)
        q_pos = torch.zeros((B, R), dtype=torch.long)
        q_w = torch.zeros((B, R), dtype=torch.float32)
        key_seg = torch.full((B, L), S, dtype=torch.long)
        for b, it in enumerate(items):
            r = len(it.input_ids) - it.response_start
            q_pos[b, :r] = torch.arange(it.response_start, len(it.input_ids))
            q_w[b, :r] = 1.0 / (r * len(layers))  # the head count is applied in the attention function
            for s, (start, end) in enumerate(it.segment_spans):
                key_seg[b, start:end] = s
        return cls(q_pos.to(device), q_w.to(device), key_seg.to(device),
                   torch.zeros((B, S + 1), dtype=torch.float64, device=device),
                   frozenset(layers), int(key_block), [len(it.segment_spans) for it in items],
                   min(it.response_start for it in items))

    def result(self, normalize: bool = True) -> list[np.ndarray]:
        """Per item: the averaged mass on each of its segments (normalised to sum 1 if asked)."""
        out = []
        acc = self.acc.cpu().numpy()
        for b, n in enumerate(self.num_segments):
            v = acc[b, :n].copy()
            if normalize:
                total = v.sum()
                v = v / total if total > 0 else v
            out.append(v)
        return out

    def accumulate(self, query: torch.Tensor, key: torch.Tensor, attention_mask: torch.Tensor | None,
                   scaling: float) -> None:
        """Add one layer's response-row attention, reduced to segments, into `acc`.

        query: (B, H, L, D); key: (B, Hkv, L, D), both after RoPE. attention_mask: None (causal
        only) or a 4D mask as built for SDPA (bool, True = attend; or additive float)."""
        self.calls += 1
        B, H, L, D = query.shape
        Hkv = key.shape[1]
        G = H // Hkv
        R = self.q_pos.shape[1]
        # Response query rows, grouped by their key/value head: (B, Hkv, G*R, D), fp32, pre-scaled.
        q = query.gather(2, self.q_pos[:, None, :, None].expand(B, H, R, D))
        q = (q.float() * scaling).reshape(B, Hkv, G * R, D)
        qpos = self.q_pos[:, None, None, :].expand(B, 1, G, R).reshape(B, 1, G * R, 1)
        mask_rows = None
        if attention_mask is not None:
            # (B or 1, 1 or H, L, Lk) -> rows of the response queries: (B, Hm, R, Lk)
            m = attention_mask
            Hm = m.shape[1]
            idx = self.q_pos[:, None, :, None].expand(B, Hm, R, m.shape[-1])
            mask_rows = m.expand(B, Hm, L, m.shape[-1]).gather(2, idx)
            if Hm == 1:
                mask_rows = mask_rows[:, :, None].expand(B, 1, G, R, m.shape[-1]).reshape(B, 1, G * R, -1)
            else:  # per-head mask: group heads like the queries
                mask_rows = mask_rows.reshape(B, Hkv, G * R, -1)

        first_q = int(self.first_q)

        def scores(k0: int, k1: int) -> torch.Tensor:
            s = q @ key[:, :, k0:k1].float().transpose(-1, -2)  # (B, Hkv, G*R, blk)
            if mask_rows is not None:
                mb = mask_rows[..., k0:k1]
                if mb.dtype == torch.bool:
                    s.masked_fill_(~mb, float("-inf"))
                else:
                    s.add_(mb.float())
            if k1 - 1 > first_q:  # the block reaches past some response row: causal mask needed
                kpos = torch.arange(k0, k1, device=s.device).view(1, 1, 1, -1)
                s.masked_fill_(kpos > qpos, float("-inf"))
            return s  # keys before every response row are visible to all of them: no mask

        blk = self.key_block
        row_max = torch.full((B, Hkv, G * R), _NEG, dtype=torch.float32, device=q.device)
        row_sum = torch.zeros((B, Hkv, G * R), dtype=torch.float32, device=q.device)
        for k0 in range(0, L, blk):  # pass 1: online max and normaliser
            s = scores(k0, min(k0 + blk, L))
            new_max = torch.maximum(row_max, s.amax(-1))
            row_sum = row_sum * torch.exp(row_max - new_max) + s.sub_(new_max[..., None]).exp_().sum(-1)
            row_max = new_max
        # Each row's weight over heads x response tokens x layers, divided into its normaliser.
        w = self.q_w[:, None, None, :].expand(B, Hkv, G, R).reshape(B, Hkv, G * R) / H
        scale = torch.where(row_sum > 0, w / row_sum.clamp_min(1e-38), torch.zeros_like(w))[:, :, None, :]
        for k0 in range(0, L, blk):  # pass 2: probabilities reduced straight into segments
            k1 = min(k0 + blk, L)
            p = scores(k0, k1).sub_(row_max[..., None]).exp_()
            mass = (scale @ p).sum(dim=(1, 2))  # weighted sum over heads and rows: (B, blk)
            self.acc.scatter_add_(1, self.key_seg[:, k0:k1], mass.double())


def segment_attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                              scaling: float | None = None, segment_probe: SegmentProbe | None = None,
                              **kwargs):
    """An AttentionInterface function: the layer output exactly as `sdpa`, plus the probe's
    measurement on the layers it asks for."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    out = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                 scaling=scaling, **kwargs)
    if segment_probe is not None and getattr(module, "layer_idx", None) in segment_probe.layers:
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        segment_probe.accumulate(query, key, attention_mask, scale)
    return out


def register() -> str:
    """Register the attention function and its mask builder (the SDPA one) under ATTN_NAME."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTN_NAME, segment_attention_forward)
    AttentionMaskInterface.register(ATTN_NAME, sdpa_mask)
    return ATTN_NAME


register()
