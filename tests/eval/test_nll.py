"""The answer NLL: the token sequence is the prompt as generation sees it plus the answer; its value is
a plain HF forward with labels masked to the answer, and what the stage writes is what the scoring
engine gives for the same item and model; a finished model is never scored (or loaded) again."""

from __future__ import annotations

import json
import logging

import pytest

from longcurate.cli import main
from longcurate.core.prompts import user_prompt
from longcurate.eval import nll


def _items() -> list[nll.AnswerItem]:
    ctx = "The harbour bakery sells plum cake. " * 6 + "Its secret is green cardamom from Kerala. " + "Boats. " * 5
    return [nll.AnswerItem("probe-a", "probe", "document", 0.4, user_prompt(ctx, "What is the secret?"),
                           "Its secret is green cardamom from Kerala."),
            nll.AnswerItem("heldout-b", "heldout", "fine", 0.9, user_prompt(ctx[:120], "Quote the first sentence."),
                           "The harbour bakery sells plum cake.")]


def _sequence(it: nll.AnswerItem, tokenizer):
    from longcurate.eval.model import LLRequest
    from longcurate.eval.render import answer_sequence

    return answer_sequence(LLRequest(it.id, it.prompt, it.answer), tokenizer, "chat")


def test_sequence_is_the_generation_prompt_then_the_answer(tokenizer):
    from longcurate.eval.model import GenRequest
    from longcurate.eval.render import encode_for_local

    for it in _items():
        seq = _sequence(it, tokenizer)
        generated_from = encode_for_local(GenRequest(it.id, it.prompt, 1), tokenizer, "chat", 10 ** 6)
        assert seq.input_ids[:seq.response_start] == generated_from  # exactly what generate() is given
        text = tokenizer.apply_chat_template([{"role": "user", "content": it.prompt}], tokenize=False,
                                             add_generation_prompt=True)
        assert text.endswith("<|im_start|>assistant\n")
        assert tokenizer.decode(seq.input_ids[seq.response_start:]) == it.answer  # no end-of-turn marker


def test_nll_equals_a_plain_hf_forward_with_labels_on_the_answer(tiny_model, tokenizer):
    """Reference: the chat-template text tokenized on its own, the answer's tokens after it, one HF
    forward per item with labels = -100 outside the answer (`oracles.select`), fp32."""
    from longcurate.core.engine import ScoreItem
    from longcurate.eval.hf_backend import HFModel
    from oracles.select import reference_response_nll

    items = _items()
    records, failures = nll.score_answers(items, HFModel(tiny_model, tokenizer, progress=False))
    assert failures == [] and [r["id"] for r in records] == ["heldout-b", "probe-a"]  # sorted by id
    refs = []
    for it in items:
        text = tokenizer.apply_chat_template([{"role": "user", "content": it.prompt}], tokenize=False,
                                             add_generation_prompt=True)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        answer = tokenizer(it.answer, add_special_tokens=False)["input_ids"]
        refs.append(ScoreItem(it.id, prompt + answer, len(prompt)))
    expected = {r.id: r for r in reference_response_nll(tiny_model, refs)}
    for rec in records:
        assert rec["n_tokens"] == expected[rec["id"]].n_tokens
        assert rec["nll"] == pytest.approx(expected[rec["id"]].nll, rel=1e-5)
    by_id = {r["id"]: r for r in records}
    assert by_id["probe-a"]["source"] == "probe" and by_id["probe-a"]["position"] == 0.4
    assert by_id["heldout-b"]["task"] == "fine"


def test_unscorable_items_fail_alone(tiny_model, tokenizer):
    from longcurate.eval.hf_backend import HFModel

    items = _items() + [nll.AnswerItem("empty", "probe", "code", 0.1, "Say nothing.", "")]
    gen = HFModel(tiny_model, tokenizer, progress=False, max_context=120)  # probe-a: 146 tokens, heldout-b: 102
    records, failures = nll.score_answers(items, gen)
    assert [r["id"] for r in records] == ["heldout-b"]
    assert {f.id: f.error.split(":")[0] for f in failures} == {"probe-a": "too long", "empty": "empty answer"}


def test_aggregate_by_source_task_and_position():
    recs = [{"id": "a", "source": "probe", "task": "code", "position": 0.1, "nll": 1.0, "n_tokens": 3},
            {"id": "b", "source": "probe", "task": "code", "position": 0.5, "nll": 3.0, "n_tokens": 3},
            {"id": "c", "source": "probe", "task": "document", "position": 1.0, "nll": 2.0, "n_tokens": 3},
            {"id": "d", "source": "heldout", "task": "fine", "position": None, "nll": 4.0, "n_tokens": 3}]
    agg = nll.aggregate_nll(recs, buckets=2)
    assert agg["all"]["mean"] == 2.5 and agg["all"]["n"] == 4
    assert {k: v["mean"] for k, v in agg["by_source"].items()} == {"heldout": 4.0, "probe": 2.0}
    assert {k: v["mean"] for k, v in agg["by_task"].items()} == {"heldout/fine": 4.0, "probe/code": 2.0,
                                                                 "probe/document": 2.0}
    cells = agg["by_position"]["probe"]
    assert [c["bucket"] for c in cells] == [[0.0, 0.5], [0.5, 1.0]]
    assert [(c["mean"], c["n"]) for c in cells] == [(1.0, 1), (2.5, 2)]  # position 1.0 falls in the last bucket
    assert cells[1]["low"] == 2.0 and cells[1]["high"] == 3.0
    assert "heldout" not in agg["by_position"]  # no position: counted in its source and task only


def _heldout(run):
    """Two held-out samples in the run folder, as synth writes them (layout.heldout)."""
    from longcurate.core.prompts import messages_for

    rows = []
    for i, (ctx_len, start) in enumerate(((400, 40), (400, 300))):
        context = ("filler words " * 60)[:ctx_len]
        context = context[:start] + "The answer is ginger." + context[start + 21:]
        rows.append({"id": f"heldout-{i:06d}", "kind": "fine", "context": context, "instruction": "What is the answer?",
                     "response": "The answer is ginger.", "messages": messages_for(context, "What is the answer?",
                                                                                   "The answer is ginger."),
                     "gold": [{"segment": 0, "char_start": start, "char_end": start + 21}]})
    from longcurate.core.jsonl import write_jsonl

    write_jsonl(run / "heldout.jsonl", rows)


def _args(tmp_path, model_dirs, *extra):
    return ["eval", "run", f"output_dir={tmp_path / 'run'}", f"model={model_dirs / 'base'}",
            f"eval.checkpoint={model_dirs / 'checkpoint'}", "eval.run=[nll]", "eval.probes.context_tokens=400",
            "eval.probes.num_positions=3", "eval.generate.dtype=float32", "eval.generate.device=cpu", *extra]


def test_stage_writes_what_the_engine_gives_and_resumes(tmp_path, model_dirs, monkeypatch):
    from longcurate.core.engine import ScoringEngine
    from longcurate.core.jsonl import Rejects
    from longcurate.core.models import load_model, load_tokenizer

    (tmp_path / "run").mkdir()
    _heldout(tmp_path / "run")
    assert main(_args(tmp_path, model_dirs)) == 0
    folder = tmp_path / "run" / "eval" / "checkpoint" / "nll"
    written = [json.loads(x) for x in (folder / "items.jsonl").read_text().splitlines()]
    assert [r["id"] for r in written] == sorted(r["id"] for r in written)
    assert {r["source"] for r in written} == {"probe", "heldout"}
    held = {r["id"]: r for r in written if r["source"] == "heldout"}
    assert held["heldout-000000"]["position"] == pytest.approx((40 + 10.5) / 400)  # the gold span's centre
    assert held["heldout-000001"]["task"] == "fine"
    # the same items scored by the engine on the same model
    with Rejects(tmp_path / "r.jsonl") as rejects:
        items = nll.probe_items(tmp_path / "run" / "eval" / "probes.jsonl", rejects)
        items += nll.heldout_items(tmp_path / "run" / "heldout.jsonl", rejects)
    tok = load_tokenizer(str(model_dirs / "checkpoint"))
    model = load_model(str(model_dirs / "checkpoint"), dtype="float32", device="cpu")
    seqs = [_sequence(it, tok) for it in items]
    engine = {r.id: r for r in ScoringEngine(model, show_progress=False).response_nll(seqs)}
    # the stage runs the prefix its probes share once (core.prefixes): equal up to fp32 rounding
    assert {r["id"]: r["n_tokens"] for r in written} == {i: r.n_tokens for i, r in engine.items()}
    assert {r["id"]: r["nll"] for r in written} == pytest.approx({i: r.nll for i, r in engine.items()}, rel=1e-6)
    results = json.loads((folder / "results.json").read_text())
    assert results["n_scored"] == len(written) and results["by_source"]["heldout"]["n"] == 2
    assert len(results["by_position"]["probe"]) == 5
    report = (tmp_path / "run" / "eval" / "report.md").read_text()
    assert "## Answer NLL" in report and "plots/nll_position_checkpoint.png" in report
    assert (tmp_path / "run" / "eval" / "plots" / "nll_position_base.png").exists()

    before = (folder / "items.jsonl").read_bytes()

    def no_load(*a, **k):
        raise AssertionError("a finished answer NLL must not load a model")

    monkeypatch.setattr("longcurate.core.models.load_model", no_load)
    assert main(_args(tmp_path, model_dirs)) == 0
    assert (folder / "items.jsonl").read_bytes() == before
    monkeypatch.undo()
    assert main(_args(tmp_path, model_dirs, "eval.nll.buckets=2")) == 0  # other settings: redone
    assert len(json.loads((folder / "results.json").read_text())["by_position"]["probe"]) == 2


def test_without_heldout_samples_only_probes_are_scored(tmp_path, model_dirs, caplog):
    with caplog.at_level(logging.INFO, logger="longcurate.eval"):
        assert main(_args(tmp_path, model_dirs, "eval.models=[base]")) == 0
    assert "no held-out samples" in caplog.text
    written = [json.loads(x) for x in (tmp_path / "run" / "eval" / "base" / "nll" / "items.jsonl").read_text().splitlines()]
    assert written and {r["source"] for r in written} == {"probe"}
