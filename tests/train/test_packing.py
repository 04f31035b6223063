"""Packing: bins are right, and a sample inside a packed row computes exactly what it computes alone."""

from __future__ import annotations

import random

import pytest
import torch

from longcurate.train.batching import PaddedCollator
from longcurate.train.loss import causal_lm_loss_sum
from longcurate.train.packing import (PackedCollator, cu_seqlens, fill_fraction, pack, pack_ffd, pack_greedy,
                                      row_position_ids)
from oracles.train import pack_reference


@pytest.mark.parametrize("seed", range(5))
def test_ffd_matches_reference(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 100) for _ in range(rng.randint(0, 300))]
    assert pack_ffd(lengths, 128) == pack_reference(lengths, 128)


@pytest.mark.parametrize("strategy", ["ffd", "greedy"])
def test_bins_valid(strategy):
    rng = random.Random(7)
    lengths = [rng.randint(1, 500) for _ in range(400)]
    bins = pack(lengths, 512, strategy)
    flat = sorted(i for b in bins for i in b)
    assert flat == list(range(len(lengths)))  # every sample exactly once
    assert all(sum(lengths[i] for i in b) <= 512 for b in bins)
    assert len(pack_ffd(lengths, 512)) <= len(pack_greedy(lengths, 512))
    assert fill_fraction(lengths, bins, 512) > (0.9 if strategy == "ffd" else 0.7)


def test_too_long_sample_is_a_clear_error():
    with pytest.raises(ValueError, match="max_tokens"):
        pack([10, 300], 256)


def test_positions_and_cu_seqlens():
    assert row_position_ids([3, 2]) == [0, 1, 2, 0, 1]
    assert cu_seqlens([3, 2, 4]) == [0, 3, 5, 9]


def _alone_logits(model, s):
    batch = PaddedCollator(0)([s])
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[0]


def _per_sample_loss(model, s):
    batch = PaddedCollator(0, "sequence")([s])
    with torch.no_grad():
        loss, _ = causal_lm_loss_sum(model, batch)
    return float(loss)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_equals_alone(attn, make_samples):
    """Two packed rows of different lengths (so one is padded): logits and per-sample losses match."""
    from oracles.models import random_llama

    model = random_llama(seed=0, attn_implementation=attn)
    samples = make_samples(5, seed=3, min_len=5, max_len=30)
    rows = [{"samples": samples[:3]}, {"samples": samples[3:]}]
    batch = PackedCollator(0, "sequence")(rows)
    assert "attention_mask" not in batch
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
    for r, row in enumerate(rows):
        start = 0
        for s in row["samples"]:
            n = len(s["input_ids"])
            alone = _alone_logits(model, s)
            assert torch.allclose(out[r, start:start + n], alone, atol=1e-4), "attention crossed samples"
            start += n
    # The packed weighted sum (sequence weighting) is the sum of the per-sample mean losses.
    with torch.no_grad():
        packed_sum, _ = causal_lm_loss_sum(model, batch)
    alone_sum = sum(_per_sample_loss(model, s) for s in samples)
    assert abs(float(packed_sum) - alone_sum) < 1e-4
    assert int(batch["num_items"]) == 5


def test_no_gradient_across_samples(tiny_model, make_samples):
    """The loss of the second sample has exactly zero gradient w.r.t. the first sample's embeddings."""
    samples = make_samples(2, seed=4, min_len=10, max_len=20)
    batch = PackedCollator(0, "token")([{"samples": samples}])
    emb = tiny_model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
    logits = tiny_model(inputs_embeds=emb, position_ids=batch["position_ids"], use_cache=False).logits
    n0 = len(samples[0]["input_ids"])
    logits[0, n0:].float().logsumexp(-1).sum().backward()
    assert torch.count_nonzero(emb.grad[0, :n0]) == 0
    assert torch.count_nonzero(emb.grad[0, n0:]) > 0


def test_first_token_of_each_sample_is_not_a_target(make_samples):
    s = make_samples(2, seed=5)
    s[1]["labels"][0] = s[1]["input_ids"][0]  # even if a sample labels its first token
    batch = PackedCollator(0)([{"samples": s}])
    n0 = len(s[0]["input_ids"])
    assert batch["labels"][0, 0] == -100 and batch["labels"][0, n0] == -100
    assert batch["loss_weights"][0, n0] == 0


def test_flattened_format(make_samples):
    s = make_samples(3, seed=6)
    batch = PackedCollator(0, flatten=True)([{"samples": s[:2]}, {"samples": s[2:]}])
    lengths = [len(x["input_ids"]) for x in s]
    assert batch["input_ids"].shape == (1, sum(lengths))
    assert batch["cu_seq_lens_q"].tolist() == cu_seqlens(lengths)
    assert batch["max_length_k"] == max(lengths)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="flash-attn needs CUDA")
def test_packed_equals_alone_flash_attention(make_samples):
    pytest.importorskip("flash_attn")
    from oracles.models import random_llama

    model = random_llama(seed=0, attn_implementation="flash_attention_2", dtype="bfloat16").cuda()
    samples = make_samples(4, seed=3, min_len=5, max_len=30)
    batch = PackedCollator(0, "sequence", flatten=True)([{"samples": samples}])
    batch = {k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()}
    with torch.no_grad():
        packed_sum, _ = causal_lm_loss_sum(model, batch)
        alone = 0.0
        for s in samples:
            b = PackedCollator(0, "sequence", flatten=True)([{"samples": [s]}])
            b = {k: v.cuda() if torch.is_tensor(v) else v for k, v in b.items()}
            alone += float(causal_lm_loss_sum(model, b)[0])
    assert abs(float(packed_sum) - alone) < 2e-2  # bf16 kernels
