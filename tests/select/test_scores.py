"""HMG and CAM records against per-sample references, normalisation, CAS metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from longcurate.core.records import Sample
from longcurate.select.cam import cam_records, cas, segment_nll_rows, softmax
from longcurate.core.engine import ScoreItem, ScoringEngine
from longcurate.select.hmg import ShortModel, finalize_hmg, hmg_records, minmax
from longcurate.select.inputs import PromptBuilder
from oracles.select import reference_response_nll, reference_segment_attention

from .conftest import make_samples


def _prepared(tokenizer, fmt, n=5, **kw):
    b = PromptBuilder(tokenizer, prompt_format=fmt, max_length=2048, **kw)
    # lengths from ~250 to ~900 tokens: batches mix lengths
    return b, [b.prepare(Sample.from_dict(d)) for d in make_samples(n, seed=3, min_par=2, max_par=9)]


def _hmg_and_reference(model, builder, ps, window):
    """HMG records with θ_A = the model limited to `window`, and the per-sample references of θ_B
    (full prompt) and θ_A (the window view)."""
    eng = ScoringEngine(model, batch_tokens=4096, show_progress=False)
    short = ShortModel(f"model@window{window}", eng, window, same_as_b=True)
    recs = hmg_records(ps, builder, eng, short, "model", short_window=window)
    ref_b = reference_response_nll(model, [p.item() for p in ps])
    views = [builder.window_view(p, window) for p in ps]
    ref_a = reference_response_nll(model, [ScoreItem(p.id, v[0], v[1]) for p, v in zip(ps, views)])
    return recs, ref_b, ref_a


@pytest.mark.parametrize("fmt", ["chat", "gateau"])
def test_hmg_matches_per_sample_reference(tokenizer, tiny_model, fmt):
    b, ps = _prepared(tokenizer, fmt)
    assert len({len(p.input_ids) for p in ps}) == len(ps)
    recs, ref_b, ref_a = _hmg_and_reference(tiny_model, b, ps, 300)
    for r, rb, ra, p in zip(recs, ref_b, ref_a, ps):
        assert r["n_response_tokens"] == rb.n_tokens == p.n_response_tokens
        assert r["nll_b"] == pytest.approx(rb.nll, rel=1e-4)
        assert r["nll_a"] == pytest.approx(ra.nll, rel=1e-4)
        assert r["ppl_b"] == pytest.approx(math.exp(rb.nll), rel=1e-4)
        assert r["n_tokens_a"] == min(300, len(p.input_ids))
        first = b.window_view(p, 300)[2]
        assert r["gold_beyond_window"] == (first is None or p.gold_char_start < first)


@pytest.mark.parametrize("fmt", ["chat", "gateau"])
def test_segment_ppl_rows_match_per_row_reference(tokenizer, tiny_model, fmt):
    b, ps = _prepared(tokenizer, fmt, n=3, max_segments=4)
    eng = ScoringEngine(tiny_model, batch_tokens=2048, show_progress=False)
    got = segment_nll_rows(ps, b, eng)
    for p, nlls in zip(ps, got):
        rows = [ScoreItem(f"{p.id}-{k}", ids, r0) for k, (ids, r0) in enumerate(b.segment_rows(p))]
        ref = reference_response_nll(tiny_model, rows)
        assert len(nlls) == len(p.segments)
        np.testing.assert_allclose(nlls, [r.nll for r in ref], rtol=1e-4)


def test_cam_records_distributions(tokenizer, tiny_model):
    b, ps = _prepared(tokenizer, "chat", n=2, max_segments=4)
    eng = ScoringEngine(tiny_model, batch_tokens=2048, show_progress=False)
    recs = cam_records(ps, b, eng, model="tiny", metric="cos")
    ref_attn = reference_segment_attention(tiny_model, [p.item() for p in ps])
    for r, p, a in zip(recs, ps, ref_attn):
        imp = np.array(r["importance"])
        assert imp.sum() == pytest.approx(1.0) and len(imp) == len(p.segments)
        np.testing.assert_allclose(imp, softmax(-np.log(r["segment_ppl"])), rtol=1e-9)
        np.testing.assert_allclose(r["segment_attn"], a, atol=1e-5)
        assert r["cas"] == pytest.approx(cas(imp, np.array(r["segment_attn"]), "cos"))
        assert r["gold_segments"] == p.gold_segments


def test_cas_metrics_known_values():
    p = np.array([0.5, 0.5, 0.0])
    assert cas(p, p, "cos") == pytest.approx(0.0)
    assert cas(np.array([1.0, 0.0]), np.array([0.0, 1.0]), "cos") == pytest.approx(1.0)
    assert cas(np.array([0.6, 0.4]), np.array([0.8, 0.2]), "cos") == pytest.approx(
        1 - (0.48 + 0.08) / (math.hypot(0.6, 0.4) * math.hypot(0.8, 0.2)))
    assert cas(np.array([0.5, 0.5]), np.array([0.25, 0.75]), "kl") == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    js = cas(np.array([1.0, 0.0]), np.array([0.0, 1.0]), "js")
    assert js == pytest.approx(math.log(2), rel=1e-6)
    with pytest.raises(ValueError):
        cas(p, p, "l2")


def test_minmax_and_finalize():
    assert minmax([2.0, 4.0, 3.0]) == [0.0, 1.0, 0.5]
    assert minmax([5.0, 5.0]) == [0.0, 0.0]
    recs = [{"id": "a", "ppl_a": 10.0, "ppl_b": 4.0}, {"id": "b", "ppl_a": 30.0, "ppl_b": 2.0},
            {"id": "c", "ppl_a": 20.0, "ppl_b": 3.0}]
    out = finalize_hmg(recs)
    assert [r["norm_ppl_a"] for r in out] == [0.0, 1.0, 0.5]
    assert [r["norm_ppl_b"] for r in out] == [1.0, 0.0, 0.5]
    assert [r["hmg"] for r in out] == [-1.0, 1.0, 0.0]
    assert "hmg" not in recs[0]  # inputs untouched


def test_rope_scaled_short_model(tiny_folder):
    """θ_A = the same checkpoint with dynamic-NTK RoPE in its config, scored one sample at a time."""
    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from longcurate.select.engines import load_engines

    cfg = build(RunConfig, {"model": str(tiny_folder), "select": {
        "dtype": "float32", "device": "cpu", "window": None,
        "rope_scaling": {"rope_type": "dynamic", "factor": 4.0}}})
    engines = load_engines(cfg, "hmg")
    short = engines.short
    params = short.engine.model.config.rope_parameters
    assert params["rope_type"] == "dynamic" and params["factor"] == 4.0 and "rope_theta" in params
    assert short.engine.max_batch_size == 1 and not short.same_as_b and short.window is None
    assert engines.short_window == 2048
    assert engines.engine_b.model.config.rope_parameters["rope_type"] == "default"


@pytest.mark.integration
@pytest.mark.parametrize("fmt", ["chat", "gateau"])
def test_hmg_matches_reference_on_smollm2(tokenizer, smollm2, fmt):
    b, ps = _prepared(tokenizer, fmt, n=3)
    recs, ref_b, ref_a = _hmg_and_reference(smollm2, b, ps, 256)
    for r, rb, ra in zip(recs, ref_b, ref_a):
        assert r["nll_b"] == pytest.approx(rb.nll, rel=1e-4)
        assert r["nll_a"] == pytest.approx(ra.nll, rel=1e-4)
    # a real model finds the quoted sentence: with the whole context the response is far likelier
    assert all(r["nll_b"] < r["nll_a"] for r in recs if r["gold_beyond_window"])


def test_log_scale_resists_ppl_outliers():
    """One huge PPL squeezes the paper's min-max PPL scale; the log scale keeps the order visible."""
    recs = [{"id": "out", "ppl_a": 1e5, "ppl_b": 1e5, "nll_a": math.log(1e5), "nll_b": math.log(1e5)},
            {"id": "x", "ppl_a": 8.0, "ppl_b": 2.0, "nll_a": math.log(8.0), "nll_b": math.log(2.0)},
            {"id": "y", "ppl_a": 2.0, "ppl_b": 2.0, "nll_a": math.log(2.0), "nll_b": math.log(2.0)}]
    ppl = {r["id"]: r["hmg"] for r in finalize_hmg(recs, "ppl")}
    log = {r["id"]: r["hmg"] for r in finalize_hmg(recs, "log")}
    assert ppl["x"] - ppl["y"] < 1e-4  # squeezed: 6 / 99998
    assert log["x"] - log["y"] == pytest.approx(math.log(4) / (math.log(1e5) - math.log(2)))
    with pytest.raises(KeyError):  # `select.hmg_scale` is checked by the config; another name is a bug
        finalize_hmg(recs, "sqrt")
