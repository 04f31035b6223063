"""The loss on transformers versions that take only 1-D `logits_to_keep` (5.17, the GPU image's):
the fallback keeps the union of columns and gives the same rows, so the same loss and gradients."""

from __future__ import annotations

import pytest
import torch

import longcurate.train.loss as loss_mod
from longcurate.train.batching import PaddedCollator
from longcurate.train.packing import PackedCollator


@pytest.mark.parametrize("packed", [False, True])
def test_index_fallback_equals_the_boolean_mask(tiny_model, make_samples, monkeypatch, packed):
    samples = make_samples(4, seed=21, min_len=8, max_len=40)
    batch = (PackedCollator(0, "sequence")([{"samples": samples[:2]}, {"samples": samples[2:]}]) if packed
             else PaddedCollator(0, "sequence")(samples))
    tiny_model.zero_grad()
    fast, _ = loss_mod.causal_lm_loss_sum(tiny_model, batch)
    fast.backward()
    grads_fast = torch.cat([p.grad.flatten() for p in tiny_model.parameters() if p.grad is not None]).clone()
    tiny_model.zero_grad()
    monkeypatch.setattr(loss_mod, "_boolean_logits_to_keep", lambda: False)
    slow, _ = loss_mod.causal_lm_loss_sum(tiny_model, batch)
    slow.backward()
    grads_slow = torch.cat([p.grad.flatten() for p in tiny_model.parameters() if p.grad is not None])
    assert float(slow) == pytest.approx(float(fast), rel=1e-6)
    assert torch.allclose(grads_fast, grads_slow, atol=1e-6)
