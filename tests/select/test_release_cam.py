"""Where our CAM differs from GATEAU's released scripts, each shown against a transcription of the
release (tests/oracles/select.py), as docs/fidelity.md states:

- the released segment importance averages each row's response loss over all L - 1 positions (the
  masked ones count 0): softmax(-NLL_i * R / (L_i - 1)), i.e. our importance at temperature (L - 1) / R,
  not at 1 (`select.audit_figures.release_importance` computes it; the audit reports it as
  `cas-cos-Trelease`);
- the released attention is the MEAN over each segment's keys; ours is the SUM (the attention mass the
  segment receives): equal after normalisation when segments are equally long, not otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest

from longcurate.core.engine import ScoringEngine
from longcurate.select.audit_figures import release_importance
from longcurate.select.cam import softmax
from longcurate.select.inputs import PromptBuilder
from oracles.select import released_segment_attention, released_segment_ppl

from .conftest import make_samples


@pytest.fixture(scope="module")
def prepared(tokenizer):
    from longcurate.core.records import Sample

    builder = PromptBuilder(tokenizer, max_length=4096, segment_tokens=32)
    sample = Sample.from_dict(make_samples(1, seed=4, min_par=5, max_par=5)[0])
    return builder, builder.prepare(sample)


def test_released_importance_is_ours_at_temperature_L_minus_1_over_R(tiny_model, prepared):
    builder, p = prepared
    rows = builder.segment_rows(p)
    engine = ScoringEngine(tiny_model, show_progress=False)
    ours = engine.response_nll([p.item(ids, r0, []) for ids, r0 in rows])
    segment_ppl = [float(np.exp(r.nll)) for r in ours]
    released = softmax(-np.log(released_segment_ppl(tiny_model, rows)))
    lengths = [len(ids) for ids, _ in rows]
    assert len(set(lengths)) > 1  # the last row is longer (a short leftover joins the last segment)
    np.testing.assert_allclose(release_importance(segment_ppl, lengths, p.n_response_tokens), released, atol=1e-6)
    at_one = softmax(-np.array([r.nll for r in ours]))
    assert np.abs(at_one - released).max() > 10 * np.abs(release_importance(segment_ppl, lengths, p.n_response_tokens)
                                                           - released).max()
    # over rows of one length the temperature is one number, (L - 1) / R > 1: the release's importance
    # is flatter than ours at 1 (and a longer row, here the last, gets a higher temperature still)
    same = [i for i, n in enumerate(lengths) if n == lengths[0]]
    entropy = lambda q: float(-(q * np.log(q)).sum())  # noqa: E731
    sub_released = softmax(np.log(released[same]))
    sub_at_one = softmax(np.log(at_one[same]))
    assert (lengths[0] - 1) / p.n_response_tokens > 1 and entropy(sub_released) > entropy(sub_at_one)


def test_released_attention_is_a_mean_over_keys_ours_a_sum(tiny_model, prepared):
    _, p = prepared
    item = p.item()
    lengths = np.array([b - a for a, b in item.segment_spans], dtype=np.float64)
    assert len(set(lengths)) > 1
    engine = ScoringEngine(tiny_model, show_progress=False)
    raw = engine.segment_attention([item], normalize=False)[0]  # mass per segment (a sum over its keys)
    released = released_segment_attention(tiny_model, item)
    per_key = raw / lengths
    np.testing.assert_allclose(per_key / per_key.sum(), released, rtol=1e-5, atol=1e-7)
    ours = raw / raw.sum()
    assert not np.allclose(ours, released, rtol=1e-3)  # they differ where segments differ in length
