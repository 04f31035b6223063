"""Shared prompt prefixes (`core.prefixes`): prompts that start alike run their common prefix once.

References: the answer NLL against one HF forward per item with full-vocabulary logits and labels on
the answer (`oracles.select.reference_response_nll`, fp32, relative difference <= 1e-5: only the
matmul shapes differ); greedy generation against one prompt at a time without any sharing (the same
text exactly, fp32). The prefix is run once per model even when generation and the NLL ask for it in
different calls."""

from __future__ import annotations

import pytest

from longcurate.core.engine import ScoreItem, ScoringEngine
from longcurate.core.prefixes import (PrefixStore, can_share_prefixes, common_prefix, group_by_prefix,
                                      shared_response_nll)
from longcurate.eval.hf_backend import HFModel
from longcurate.eval.model import GenRequest, LLRequest
from longcurate.eval.render import encode_for_local

CONTEXT = ("The harbour bakery sells plum cake every morning. " * 4 + "Its secret is green cardamom from Kerala. "
           + "Fishing boats leave at dawn and come back at noon. " * 4)
QUESTIONS = [("What is the secret?", "Green cardamom from Kerala."), ("When do the boats leave?", "At dawn."),
             ("What does the bakery sell?", "Plum cake, every morning."), ("When do boats come back?", "At noon.")]


def _requests() -> list[tuple[str, str, str]]:
    """(id, prompt, answer): four questions on one context, two on another, one alone."""
    other = "A lighthouse keeper counts ships from a tower on the cliff. " * 6
    rows = [(f"c{i}", f"{CONTEXT}\n\n{q}", a) for i, (q, a) in enumerate(QUESTIONS)]
    rows += [(f"o{i}", f"{other}\n\n{q}", a) for i, (q, a) in enumerate(QUESTIONS[:2])]
    return rows + [("alone", "Say something about the sea.", "The sea is wide.")]


def test_group_by_prefix_finds_long_common_prefixes_only():
    base = list(range(100, 300))
    seqs = [base + [1, 2], base + [3], base[:150] + [9] * 10, [5] * 120, base + [1, 7]]
    groups = group_by_prefix(seqs, min_tokens=64, min_fraction=0.5)
    assert {tuple(g.members): g.shared for g in groups} == {(0, 1, 2, 4): 150, (3,): 0}
    # without the shorter one, the three longer share all of `base`
    groups = group_by_prefix([seqs[0], seqs[1], seqs[4]])
    assert [(g.shared, g.members) for g in groups] == [(200, [0, 1, 2])]
    # a limit keeps each member's own last tokens out of the prefix
    assert group_by_prefix([seqs[0], seqs[4]], limits=[120, 201])[0].shared == 120
    # short prefixes (a chat template's header) and small fractions are not shared
    assert all(g.shared == 0 for g in group_by_prefix([base[:40] + [1] * 50, base[:40] + [2] * 50]))
    assert all(g.shared == 0 for g in group_by_prefix([base[:70] + [1] * 200, base[:70] + [2] * 200]))
    assert common_prefix([1, 2, 3], [1, 2]) == 2 and group_by_prefix([]) == []


def test_shared_nll_equals_the_per_item_full_logit_reference(tiny_model, tokenizer):
    from longcurate.eval.render import answer_sequence
    from oracles.select import reference_response_nll

    seqs = [answer_sequence(LLRequest(i, p, a), tokenizer, "chat") for i, p, a in _requests()]
    store = PrefixStore(tiny_model)
    for batch_tokens in (None, 200):  # one batch per group; one row per batch
        engine = ScoringEngine(tiny_model, batch_tokens=batch_tokens, show_progress=False)
        got = shared_response_nll(engine, seqs, store, progress=False)
        ref = reference_response_nll(tiny_model, seqs)
        assert [r.id for r in got] == [s.id for s in seqs]
        assert [r.n_tokens for r in got] == [r.n_tokens for r in ref]
        for g, r in zip(got, ref):
            assert g.nll == pytest.approx(r.nll, rel=1e-5)
    # two prefixes, each computed once: the second pass finds them for each of its 6 one-row batches
    assert (store.prefills, store.hits) == (2, 6)


def _gen(model, tokenizer, **kw) -> HFModel:
    return HFModel(model, tokenizer, progress=False, **kw)


def test_shared_prefix_generation_equals_one_at_a_time(tiny_model, tokenizer):
    reqs = [GenRequest(i, p, 10) for i, p, _ in _requests()]
    shared = _gen(tiny_model, tokenizer, batch_size=4)
    encoded = [(k, encode_for_local(r, tokenizer, "chat", 10 ** 6)) for k, r in enumerate(reqs)]
    batches = shared._batches(encoded, reqs)
    assert {frozenset(i for i, _ in rows) for s, rows in batches if s} == {frozenset({0, 1, 2, 3}), frozenset({4, 5})}
    assert [[i for i, _ in rows] for s, rows in batches if not s] == [[6]]
    out = shared.generate(reqs)
    ref = _gen(tiny_model, tokenizer, batch_size=1, share_prefixes=False).generate(reqs)
    assert all(r.ok for r in out) and [r.id for r in out] == [r.id for r in reqs]
    assert [r.text for r in out] == [r.text for r in ref]
    assert len({r.text for r in out}) > 1
    assert shared.prefixes.prefills == 2


def test_generation_and_nll_share_one_prefill(tiny_model, tokenizer):
    model = _gen(tiny_model, tokenizer, batch_size=8)
    model.generate([GenRequest(i, p, 4) for i, p, _ in _requests()])
    assert (model.prefixes.prefills, model.prefixes.hits) == (2, 0)
    model.loglikelihood([LLRequest(i, p, a) for i, p, a in _requests()])
    assert (model.prefixes.prefills, model.prefixes.hits) == (2, 2)  # the NLL ran on the stored prefixes


def test_the_store_keeps_the_most_recent_prefixes_under_its_byte_budget(tiny_model):
    store = PrefixStore(tiny_model)
    one = store.get(list(range(1, 101)))
    size = sum(t.numel() * t.element_size() for layer in one.layers for t in (layer.keys, layer.values))
    store = PrefixStore(tiny_model, max_bytes=2 * size)
    for start in (1, 1001, 2001, 2001, 1):  # the third evicts the first; the first comes back as a new prefill
        store.get(list(range(start, start + 100)))
    assert (store.prefills, store.hits) == (4, 1)
    copy = store.batch(list(range(1001, 1101)), rows=3)
    assert copy.layers[0].keys.shape[0] == 3 and store.get(list(range(1001, 1101))).layers[0].keys.shape[0] == 1


def test_models_whose_forward_depends_on_the_length_do_not_share(tokenizer):
    from oracles.models import random_llama

    dynamic = random_llama(seed=0, rope_scaling={"rope_type": "dynamic", "factor": 2.0})
    assert not can_share_prefixes(dynamic) and _gen(dynamic, tokenizer).prefixes is None
    sliding = random_llama(seed=0)
    sliding.config.sliding_window = 64
    assert not can_share_prefixes(sliding)


def test_score_items_that_share_a_prefix_keep_the_first_answer_row(tiny_model):
    """Two items with the same prompt: the prefix stops before the row that predicts the answer."""
    prompt = list(range(10, 200))
    items = [ScoreItem("a", prompt + [5, 6], len(prompt)), ScoreItem("b", prompt + [5, 7, 8], len(prompt))]
    from oracles.select import reference_response_nll

    got = shared_response_nll(ScoringEngine(tiny_model, show_progress=False), items, PrefixStore(tiny_model), False)
    for g, r in zip(got, reference_response_nll(tiny_model, items)):
        assert g.nll == pytest.approx(r.nll, rel=1e-5)


def test_a_failing_shared_batch_falls_back_to_whole_prompts(tiny_model, tokenizer):
    class NoCache(HFModel):
        def _generate_ids(self, prompts, max_new_tokens, shared=0):
            if shared:
                raise RuntimeError("this model cannot continue from a cache")
            return super()._generate_ids(prompts, max_new_tokens, shared)

    reqs = [GenRequest(i, p, 6) for i, p, _ in _requests()]
    out = NoCache(tiny_model, tokenizer, batch_size=4, progress=False).generate(reqs)
    ref = _gen(tiny_model, tokenizer, batch_size=1, share_prefixes=False).generate(reqs)
    assert all(r.ok for r in out) and [r.text for r in out] == [r.text for r in ref]


@pytest.mark.parametrize("share", [True, False])
def test_the_config_switch_turns_prefix_sharing_off(tiny_model_dir, share):
    """`eval.generate.share_prefixes: false` scores every prompt whole (results comparable with a
    per-prompt run in bfloat16)."""
    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from longcurate.eval.hf_backend import from_config

    cfg = build(RunConfig, {"model": str(tiny_model_dir),
                            "eval": {"generate": {"dtype": "float32", "share_prefixes": share}}})
    assert (from_config(cfg, str(tiny_model_dir)).prefixes is not None) is share
