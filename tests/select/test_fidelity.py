"""Issue 11 (recipe fidelity), select side: Cherry's IFD and the perplexity baseline, the ranking where
both terms count (and `paper` = the released rank.py), non-finite perplexities quarantined, one
tokenizer for θ_A and θ_B, CAS sanity and the importance temperature."""

from __future__ import annotations

import json
import math
import random
import shutil

import numpy as np
import pytest

from longcurate.core.engine import NLLResult, ScoringEngine
from longcurate.core.errors import ConfigError, UserError
from longcurate.core.records import Sample
from longcurate.core.runner import StepSpec, run_step
from longcurate.select.budget import method_orders, write_budgets
from longcurate.select.config import METHODS, SelectConfig
from longcurate.select.cam import finalize_cam, softmax
from longcurate.select.diagnose import cas_sanity, diagnose, format_report
from longcurate.select.hmg import ShortModel, check_same_tokenizer, finalize_hmg, hmg_records, minmax
from longcurate.select.inputs import PromptBuilder
from longcurate.select.rank import format_stats, rank_scores, spearman
from longcurate.select.merge import merge_parts

from .conftest import make_samples


def hf_ppl(model, ids: list[int], first_label: int) -> float:
    """PPL of ids[first_label:] from one plain HF forward with `labels` (-100 before `first_label`)."""
    import torch

    x = torch.tensor([ids])
    labels = x.clone()
    labels[0, :first_label] = -100
    with torch.no_grad():
        return math.exp(float(model(input_ids=x, labels=labels).loss))


@pytest.mark.parametrize("fmt", ["chat", "gateau"])
def test_ifd_is_ppl_with_prompt_over_ppl_alone_from_two_plain_hf_forwards(tokenizer, tiny_model, fmt):
    b = PromptBuilder(tokenizer, prompt_format=fmt, max_length=2048)
    ps = [b.prepare(Sample.from_dict(d)) for d in make_samples(4, seed=11, min_par=2, max_par=6)]
    eng = ScoringEngine(tiny_model, batch_tokens=4096, show_progress=False)
    recs = hmg_records(ps, b, eng, ShortModel("w", eng, 256, same_as_b=True), "tiny", short_window=256)
    if fmt == "chat":  # the chat template with an empty user turn, written out here
        head = tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": ""}], tokenize=False,
                                                       add_generation_prompt=True), add_special_tokens=False)["input_ids"]
    else:  # Cherry's "### Response:" + output
        head = tokenizer("### Response: ")["input_ids"]
    for r, p in zip(recs, ps):
        response = p.input_ids[p.response_start:]
        with_prompt = hf_ppl(tiny_model, p.input_ids, p.response_start)
        alone = hf_ppl(tiny_model, head + response, len(head))
        assert r["ifd"] == pytest.approx(with_prompt / alone, rel=1e-4)
        assert r["ppl_b"] == pytest.approx(with_prompt, rel=1e-4)  # the perplexity baseline's figure
        assert r["ppl_b_alone"] == pytest.approx(alone, rel=1e-4)


class InfEngine:
    """An engine whose θ_B NLL overflows for one id (as a diverged bf16 forward would)."""

    def __init__(self, bad: str):
        self.bad = bad

    def response_nll(self, items):
        return [NLLResult(it.id, math.inf if it.id == self.bad else 2.0 * (len(it) - it.response_start),
                          len(it) - it.response_start) for it in items]


def test_non_finite_perplexity_is_quarantined_with_a_reason_not_normalised(tokenizer, tmp_path):
    b = PromptBuilder(tokenizer, prompt_format="chat", max_length=2048)
    ps = [b.prepare(Sample.from_dict(d)) for d in make_samples(3, seed=2, min_par=2, max_par=3)]
    eng = InfEngine(ps[1].id)
    recs = hmg_records(ps, b, eng, ShortModel("w", eng, 64, same_as_b=True), "fake", short_window=64)
    assert recs[1] == {"id": ps[1].id, "field": "response", "rejected": recs[1]["rejected"]}
    assert recs[1]["rejected"].startswith("non-finite perplexity: ppl_")
    with pytest.raises(ValueError, match="non-finite"):
        minmax([1.0, math.inf])
    part = tmp_path / "hmg.part-0-of-1.jsonl"
    part.write_text("".join(json.dumps(r) + "\n" for r in recs))
    part_step = StepSpec("hmg shard 0 of 1", part, {})
    run_step(part_step, lambda run: {})  # the part, as written above, marked finished
    stats = run_step(StepSpec("hmg merge", tmp_path / "hmg.jsonl", {}), lambda run: merge_parts(
        run.output, [part_step], [p.id for p in ps], lambda rs: finalize_hmg(rs), source="samples.jsonl",
        lines={p.id: k + 1 for k, p in enumerate(ps)}))
    assert stats["scored"] == 2 and stats["rejected"] == 1
    kept = [json.loads(x) for x in (tmp_path / "hmg.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == [ps[0].id, ps[2].id] and all(math.isfinite(r["hmg"]) for r in kept)
    (q,) = [json.loads(x) for x in (tmp_path / "hmg.rejected.jsonl").read_text().splitlines()]
    assert q["id"] == ps[1].id and q["line"] == 2 and q["file"] == "samples.jsonl" and "non-finite" in q["reason"]


def test_theta_a_must_share_theta_b_s_tokenizer(tokenizer):
    import copy

    check_same_tokenizer(tokenizer, tokenizer, "a", "b")
    other = copy.deepcopy(tokenizer)
    other.add_tokens(["<not-in-theta-b>"])
    with pytest.raises(UserError, match="different vocabularies"):
        check_same_tokenizer(other, tokenizer, "a", "b")


HMG = [{"id": "a", "ppl_a": 2.0, "ppl_b": 1.0}, {"id": "b", "ppl_a": 4.0, "ppl_b": 3.0},
       {"id": "c", "ppl_a": 6.0, "ppl_b": 2.0}]
CAS = [{"id": "a", "cas": 0.3}, {"id": "b", "cas": 0.5}, {"id": "c", "cas": 0.1}]


def test_paper_normalisation_equals_the_released_rank_py_on_a_hand_computed_example():
    # By hand: min-max ppl_a = (0, .5, 1), ppl_b = (0, 1, .5); diff = (0, -.5, .5);
    # softmax = (1, e^-.5, e^.5) / 3.2552519 = (.3071959, .1863237, .5064804);
    # score = .8 * softmax + .2 * cas = (.3057567, .2490590, .4251843).
    ranked, stats = rank_scores(finalize_hmg(HMG), CAS, alpha=0.8, normalize="paper")
    assert [r["id"] for r in ranked] == ["c", "a", "b"]
    want = {"a": 0.3057567, "b": 0.2490590, "c": 0.4251843}
    for r in ranked:
        assert r["score"] == pytest.approx(want[r["id"]], abs=1e-7)
    assert "CAS alone decides" in format_stats(stats)


def test_default_normalisation_lets_both_terms_move_the_order():
    rng = random.Random(0)
    n = 200
    hmg = [{"id": f"s{i}", "hmg": rng.lognormvariate(0, 2) * 1e-3} for i in range(n)]  # heavy-tailed, tiny
    cam = [{"id": f"s{i}", "cas": 0.1 + 0.3 * rng.random()} for i in range(n)]
    ranked, stats = rank_scores(hmg, cam, alpha=0.8)
    assert stats["normalize"] == "rank"
    assert stats["spearman_score_hmg"] >= 0.3 and stats["spearman_score_cas"] >= 0.2  # 0.8 / 0.2 of the order
    _, paper = rank_scores(hmg, cam, alpha=0.8, normalize="paper")
    assert paper["spearman_score_cas"] > 0.99  # the released formula: CAS alone decides
    line = format_stats(stats)
    assert "Spearman(final, hmg_term)=" in line and "Spearman(final, cas_term)=" in line
    by_alpha = [rank_scores(hmg, cam, alpha=a)[1] for a in (0.2, 0.5, 0.8)]
    assert by_alpha[0]["spearman_score_hmg"] < by_alpha[1]["spearman_score_hmg"] < by_alpha[2]["spearman_score_hmg"]


def _samples(ids):
    return {i: Sample.from_dict({"id": i, "context": "c" * 10, "instruction": "q", "response": "r", "length": 10})
            for i in ids}


def test_ifd_and_perplexity_budgets_and_arms(tmp_path):
    hmg = [{"id": "a", "hmg": 0.1, "ppl_b": 5.0, "ifd": 0.5}, {"id": "b", "hmg": 0.2, "ppl_b": 9.0, "ifd": 1.4},
           {"id": "c", "hmg": 0.3, "ppl_b": 2.0, "ifd": 0.9}, {"id": "d", "hmg": 0.0, "ppl_b": 7.0, "ifd": 1.1}]
    ranked, _ = rank_scores(hmg, None, alpha=1.0)
    assert {"ifd", "perplexity"} <= set(METHODS)
    orders = method_orders(ranked, {}, seed=0)
    assert orders["ifd"] == ["c", "a", "d", "b"]  # IFD <= 1 descending, then > 1 nearest 1 first
    assert orders["perplexity"] == ["b", "d", "a", "c"]
    written = write_budgets(ranked, _samples("abcd"), tmp_path, [2], ["ifd", "perplexity"])
    assert written == {"ifd-2.jsonl": 2, "perplexity-2.jsonl": 2}
    old, _ = rank_scores([{"id": r["id"], "hmg": r["hmg"]} for r in hmg], None)
    with pytest.raises(UserError, match="no ifd figure"):
        write_budgets(old, _samples("abcd"), tmp_path, [2], ["ifd"])


def test_importance_temperature_at_merge():
    nll = np.array([1.0, 1.2, 0.9, 1.05])
    rec = {"id": "x", "importance": softmax(-nll).tolist(), "segment_attn": [0.1, 0.2, 0.3, 0.4],
           "segment_ppl": np.exp(nll).tolist(), "cas": 0.0, "cas_metric": "cos"}
    assert finalize_cam([rec], 1.0) == [rec]  # the parts' values, unchanged
    (sharp,) = finalize_cam([rec], 0.25)
    assert sharp["importance"] == pytest.approx(softmax(-nll / 0.25).tolist(), rel=1e-9)
    assert sharp["importance_temperature"] == 0.25
    imp, att = np.array(sharp["importance"]), np.array(rec["segment_attn"])
    assert sharp["cas"] == pytest.approx(1 - imp @ att / np.linalg.norm(imp) / np.linalg.norm(att))
    with pytest.raises(ConfigError, match="select.importance_temperature"):  # refused before any scoring
        SelectConfig(importance_temperature=0.0)


def test_cas_sanity_says_when_cas_is_a_length_proxy():
    hmg = [{"id": f"s{i}", "n_tokens": 1000 + 100 * i} for i in range(10)]
    cam = [{"id": f"s{i}", "cas": 0.01 * i, "importance": [1.0 / (i + 2)] * (i + 2)} for i in range(10)]
    d = cas_sanity(hmg, cam)
    assert d["cas_spearman_length"] == pytest.approx(1.0) and d["cas_spearman_segments"] == pytest.approx(1.0)
    assert d["importance_entropy"] == pytest.approx(1.0) and d["cas_length_proxy"]
    report = format_report(diagnose({}, hmg, cam))
    assert "CAS is mostly a length proxy" in report and "gold" not in report
    rng = random.Random(1)
    cam = [{"id": f"s{i}", "cas": rng.random(), "importance": [0.7, 0.1, 0.1, 0.1]} for i in range(10)]
    d = cas_sanity(hmg, cam)
    assert not d["cas_length_proxy"] and d["importance_entropy"] < 0.95
    assert spearman([r["cas"] for r in cam], [r["n_tokens"] for r in hmg]) == pytest.approx(d["cas_spearman_length"])
    assert "not mainly a length proxy" in format_report(diagnose({}, hmg, cam))


def test_score_hmg_refuses_a_theta_a_with_another_tokenizer(tmp_path, tiny_folder, capsys):
    from longcurate.cli import main

    from .conftest import write_jsonl

    other = tmp_path / "other-tokenizer"
    shutil.copytree(tiny_folder, other)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(other)
    tok.add_tokens(["<only-in-theta-a>"])
    tok.save_pretrained(other)
    data = tmp_path / "in.jsonl"
    write_jsonl(data, make_samples(2, seed=1))
    code = main(["select", "score", "hmg", "--input", str(data), "--output", str(tmp_path / "hmg.jsonl"),
                 "--model", str(tiny_folder), f"select.model_a={other}", "select.device=cpu"])
    assert code == 2
    assert "different vocabularies" in capsys.readouterr().err
