"""Loss weighting: hand-computed values, and the same loss and gradient for any world size / grad-accum split."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from longcurate.train.batching import PaddedCollator
from longcurate.train.loss import causal_lm_loss_sum, sample_weights
from longcurate.train.packing import PackedCollator
from oracles.train import reference_loss


def test_reference_values_by_hand():
    # sample A: three response tokens with losses 1, 2, 3; sample B: one with loss 4
    assert reference_loss([[1, 2, 3], [4]], "token") == pytest.approx(10 / 4)
    assert reference_loss([[1, 2, 3], [4]], "sequence") == pytest.approx((2 + 4) / 2)


def test_sample_weights():
    labels = [-100, -100, 5, 6, -100, 7]
    assert sample_weights(labels, "token") == ([0, 0, 1, 1, 0, 1], 3)
    w, k = sample_weights(labels, "sequence")
    assert k == 1 and w[2] == pytest.approx(1 / 3) and sum(w) == pytest.approx(1.0)
    assert sample_weights([-100, -100], "sequence") == ([0.0, 0.0], 0)  # no response: weighs nothing
    with pytest.raises(ValueError, match="loss_weighting"):
        sample_weights(labels, "bogus")


def _token_losses(model, s):
    """Plain per-token CE of the response tokens of one sample run alone (the straightforward way)."""
    ids = torch.tensor([s["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits[0, :-1]
    labels = torch.tensor(s["labels"][1:])
    ce = F.cross_entropy(logits, labels.clamp_min(0), reduction="none")
    return ce[labels != -100].tolist()


@pytest.mark.parametrize("mode", ["token", "sequence"])
@pytest.mark.parametrize("packed", [False, True])
def test_loss_matches_the_definition(tiny_model, make_samples, mode, packed):
    samples = make_samples(4, seed=11, min_len=8, max_len=30)
    expected = reference_loss([_token_losses(tiny_model, s) for s in samples], mode)
    batch = (PackedCollator(0, mode)([{"samples": samples[:2]}, {"samples": samples[2:]}]) if packed
             else PaddedCollator(0, mode)(samples))
    with torch.no_grad():
        total, _ = causal_lm_loss_sum(tiny_model, batch)
    assert float(total / batch["num_items"]) == pytest.approx(expected, abs=1e-5)


def _step_grads(model, samples, mode, world_size, grad_accum):
    """Simulate one optimizer step the way LongTrainer runs it: per-rank micro-batches in accelerate's
    round-robin order, each loss = sum / global items x world size, gradients summed over micro-batches
    then averaged over ranks."""
    per_device = len(samples) // (world_size * grad_accum)
    micro = [samples[i:i + per_device] for i in range(0, len(samples), per_device)]
    batches = [PaddedCollator(0, mode)(m) for m in micro]
    global_items = sum(int(b["num_items"]) for b in batches)  # what get_batch_samples all-reduces
    rank_grads, logged = [], 0.0
    for rank in range(world_size):
        model.zero_grad()
        for j, b in enumerate(batches):
            if j % world_size != rank:
                continue
            total, _ = causal_lm_loss_sum(model, b)
            loss = total / global_items * world_size
            loss.backward()
            logged += float(loss.detach()) / world_size  # Trainer logs the mean over ranks
        rank_grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]).clone())
    return torch.stack(rank_grads).mean(0), logged


@pytest.mark.parametrize("mode", ["token", "sequence"])
def test_same_step_for_any_world_size(make_samples, mode):
    from oracles.models import random_llama

    model = random_llama(seed=0).train()
    samples = make_samples(8, seed=12, min_len=6, max_len=40)
    expected = reference_loss([_token_losses(model, s) for s in samples], mode)
    g1, l1 = _step_grads(model, samples, mode, world_size=1, grad_accum=1)
    g2, l2 = _step_grads(model, samples, mode, world_size=2, grad_accum=2)
    g4, l4 = _step_grads(model, samples, mode, world_size=4, grad_accum=1)
    assert l1 == pytest.approx(expected, abs=1e-5)
    assert l2 == pytest.approx(l1, abs=1e-5) and l4 == pytest.approx(l1, abs=1e-5)
    assert torch.allclose(g1, g2, atol=1e-6) and torch.allclose(g1, g4, atol=1e-6)


def test_token_and_sequence_differ_when_lengths_differ(make_samples, tiny_model):
    samples = make_samples(4, seed=13, min_len=8, max_len=40)
    per = [_token_losses(tiny_model, s) for s in samples]
    assert len({len(p) for p in per}) > 1
    assert reference_loss(per, "token") != pytest.approx(reference_loss(per, "sequence"), abs=1e-6)
