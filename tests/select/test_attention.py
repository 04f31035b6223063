"""Segment attention through the AttentionInterface equals eager `output_attentions` reduced to
segments (acceptance (b)), with blocking, GQA, mixed lengths and padding exercised."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from longcurate.core.segment_attention import ATTN_NAME, SegmentProbe
from longcurate.core.engine import ScoreItem, ScoringEngine
from oracles.select import reference_segment_attention


@pytest.fixture(scope="module")
def peaky_model():
    """Tiny GQA Llama (8 heads over 2 key/value heads, 3 layers) with large initial weights, so
    attention is far from uniform and a misplaced key or row would show."""
    from oracles.models import random_llama

    return random_llama(seed=11, hidden_size=64, num_layers=3, num_heads=8, num_kv_heads=2,
                        initializer_range=0.3)


def _items(n: int, min_len: int, max_len: int, seed: int) -> list[ScoreItem]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        length = rng.randint(min_len, max_len)
        r = rng.randint(1, 40)
        ctx_end = length - r - rng.randint(1, 10)  # an instruction between context and response
        start = rng.randint(0, 8)  # a preamble before the context
        spans, s = [], start
        while s < ctx_end:
            e = min(s + rng.randint(5, 64), ctx_end)
            spans.append((s, e))
            s = e
        items.append(ScoreItem(f"a{i}", [rng.randrange(49152) for _ in range(length)], length - r, spans))
    return items


def _check(got, want, atol=1e-5):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=atol, rtol=0)


def test_segment_attention_matches_eager_mixed_lengths(peaky_model):
    items = _items(7, 60, 512, seed=0)
    engine = ScoringEngine(peaky_model, batch_tokens=1600, max_batch_size=4, show_progress=False)
    got = engine.segment_attention(items, key_block=64)  # blocks much smaller than the rows
    want = reference_segment_attention(peaky_model, items)
    _check(got, want)
    for g in got:
        assert g.sum() == pytest.approx(1.0)
    # Attention is not uniform: the test would notice a wrong key->segment map.
    assert max(float(np.ptp(w / [e - s for s, e in it.segment_spans]))
               for w, it in zip(want, items)) > 1e-3
    assert peaky_model.config._attn_implementation == "sdpa"  # restored


@pytest.mark.parametrize("layers", [[0], [-1], [2, 0]])
def test_segment_attention_layer_subsets_raw(peaky_model, layers):
    items = _items(4, 40, 300, seed=1)
    engine = ScoringEngine(peaky_model, batch_tokens=4096, show_progress=False)
    got = engine.segment_attention(items, layers=layers, key_block=50, normalize=False)
    want = reference_segment_attention(peaky_model, items, layers=layers, normalize=False)
    _check(got, want)
    for g in got:
        assert 0 < g.sum() <= 1 + 1e-9  # raw: the share of attention on the segments


def test_segment_attention_block_size_invariant(peaky_model):
    items = _items(3, 100, 400, seed=2)
    engine = ScoringEngine(peaky_model, show_progress=False)
    a = engine.segment_attention(items, key_block=1)
    b = engine.segment_attention(items, key_block=4096)
    _check(a, b, atol=1e-6)


def test_segment_attention_without_segments_and_bad_layers(peaky_model):
    items = _items(2, 50, 80, seed=3)
    items.append(ScoreItem("empty", list(range(30)), 20, []))
    engine = ScoringEngine(peaky_model, show_progress=False)
    got = engine.segment_attention(items)
    assert got[2].shape == (0,)
    _check(got[:2], reference_segment_attention(peaky_model, items[:2]))
    with pytest.raises(ValueError, match="out of range"):
        engine.segment_attention(items, layers=[3])


def test_layer_output_unchanged_by_probe(peaky_model):
    """The registered function returns exactly what SDPA returns."""
    ids = torch.randint(0, 49152, (2, 97), generator=torch.Generator().manual_seed(0))
    items = [ScoreItem("p", ids[0].tolist(), 90, [(0, 40), (40, 80)]),
             ScoreItem("q", ids[1].tolist(), 80, [(5, 60)])]
    probe = SegmentProbe.build(items, [0, 1, 2], 16, "cpu")
    with torch.inference_mode():
        want = peaky_model.model(input_ids=ids).last_hidden_state
        peaky_model.set_attn_implementation(ATTN_NAME)
        try:
            got = peaky_model.model(input_ids=ids, segment_probe=probe).last_hidden_state
        finally:
            peaky_model.set_attn_implementation("sdpa")
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert float(probe.acc.sum()) > 0


def _naive_masked(query, key, mask, q_pos, key_seg, n_seg, scaling):
    """Full (R x L) probabilities with the mask, reduced like the probe (reference for the mask path)."""
    B, H, L, D = query.shape
    G = H // key.shape[1]
    k = key.repeat_interleave(G, dim=1).double()
    out = torch.zeros((B, n_seg + 1), dtype=torch.float64)
    for b in range(B):
        rows = q_pos[b]
        s = (query[b, :, rows].double() @ k[b].transpose(-1, -2)) * scaling  # (H, R, L)
        causal = torch.arange(L)[None, :] <= rows[:, None]
        allowed = causal[None] & mask[b, :, rows]
        p = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
        per_key = p.mean(dim=(0, 1))
        out[b].scatter_add_(0, key_seg[b], per_key)
    return out


@pytest.mark.parametrize("additive", [False, True])
def test_probe_respects_an_explicit_mask(additive):
    """A 4D mask (here: a sliding window of 8 keys), boolean or additive, is honoured on top of
    causality."""
    g = torch.Generator().manual_seed(1)
    B, H, Hkv, L, D = 2, 6, 3, 40, 8
    query, key = torch.randn(B, H, L, D, generator=g) * 2, torch.randn(B, Hkv, L, D, generator=g) * 2
    i = torch.arange(L)
    window = (i[:, None] - i[None, :] < 8)[None, None].expand(B, 1, L, L)
    items = [ScoreItem("a", list(range(L)), 30, [(0, 10), (10, 25), (25, 29)]),
             ScoreItem("b", list(range(L)), 35, [(3, 33)])]
    probe = SegmentProbe.build(items, [0], key_block=7, device="cpu")
    given = torch.where(window, 0.0, torch.finfo(torch.float32).min) if additive else window
    probe.accumulate(query, key, given, scaling=D ** -0.5)
    q_pos = [torch.arange(30, 40), torch.arange(35, 40)]
    for b in range(B):
        want = _naive_masked(query[b:b + 1], key[b:b + 1], window[b:b + 1], [q_pos[b]],
                             probe.key_seg[b:b + 1], 3, D ** -0.5)
        torch.testing.assert_close(probe.acc[b], want[0], atol=1e-6, rtol=0)


@pytest.mark.integration
def test_segment_attention_matches_eager_smollm2(smollm2):
    items = _items(3, 150, 400, seed=4)
    got = ScoringEngine(smollm2, show_progress=False).segment_attention(items, key_block=128)
    _check(got, reference_segment_attention(smollm2, items))


def test_segment_attention_bf16_model_close_to_fp32():
    """A bf16 model (q, k in bf16) still reduces in fp32: close to the fp32 eager reference."""
    from oracles.models import random_llama

    kw = dict(seed=11, hidden_size=64, num_layers=3, num_heads=8, num_kv_heads=2, initializer_range=0.3)
    fp32, bf16 = random_llama(**kw), random_llama(dtype="bfloat16", **kw)
    items = _items(3, 60, 300, seed=5)
    got = ScoringEngine(bf16, show_progress=False).segment_attention(items, key_block=64)
    _check(got, reference_segment_attention(fp32, items), atol=6e-2)  # measured max 2.5e-2
