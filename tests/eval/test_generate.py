"""The model interface's generation: batched left-padded greedy == one at a time; errors stay with
their item."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from longcurate.eval.hf_backend import HFModel
from longcurate.eval.model import EvalModel, GenRequest, GenResult
from longcurate.eval.render import encode_for_local, render_prompt


def _requests():
    texts = ["Hello there, how are you?", "Tell me about the sea " * 9, "x",
             "A long question about numbers " * 15 + "?", "Short one.", "Tell me about the sea " * 3]
    return [GenRequest(f"r{i}", t, 10) for i, t in enumerate(texts)]


def test_batched_left_padded_equals_one_at_a_time(tiny_model, tokenizer):
    reqs = _requests()
    batched = HFModel(tiny_model, tokenizer, batch_size=4, progress=False).generate(reqs)
    single = HFModel(tiny_model, tokenizer, batch_size=1, progress=False).generate(reqs)
    assert [r.id for r in batched] == [r.id for r in reqs]
    assert all(r.error is None for r in batched)
    assert [r.text for r in batched] == [r.text for r in single]
    assert len({r.text for r in batched}) > 1  # different prompts, different continuations


def test_batches_are_length_sorted_and_bounded(tiny_model, tokenizer):
    gen = HFModel(tiny_model, tokenizer, batch_size=3, max_batch_tokens=400, progress=False)
    reqs = _requests() + [GenRequest("other-budget", "hi", 5)]
    enc = [(i, encode_for_local(r, gen.tokenizer, gen.template, gen.max_context)) for i, r in enumerate(reqs)]
    batches = [rows for _, rows in gen._batches(enc, reqs)]
    assert sorted(i for b in batches for i, _ in b) == list(range(len(reqs)))
    for b in batches:
        assert len(b) <= 3
        assert len({reqs[i].max_new_tokens for i, _ in b}) == 1
        lens = [len(ids) for _, ids in b]
        assert lens == sorted(lens, reverse=True)
        if len(b) > 1:
            assert (lens[0] + reqs[b[0][0]].max_new_tokens) * len(b) <= 400


def test_mixed_max_new_tokens_keep_each_budget(tiny_model, tokenizer):
    reqs = [GenRequest("a", "one two three", 3), GenRequest("b", "four five six", 8)]
    out = HFModel(tiny_model, tokenizer, batch_size=8, progress=False).generate(reqs)
    for r, res in zip(reqs, out):
        assert len(tokenizer(res.text, add_special_tokens=False)["input_ids"]) <= r.max_new_tokens + 1


def test_error_on_one_item_keeps_the_others(tiny_model, tokenizer):
    gen = HFModel(tiny_model, tokenizer, batch_size=4, max_context=120, progress=False)
    reqs = [GenRequest("ok1", "short", 8), GenRequest("long", "word " * 300, 8), GenRequest("ok2", "also short", 8)]
    out = gen.generate(reqs)
    assert [r.id for r in out] == ["ok1", "long", "ok2"]
    assert out[1].error and "prompt too long" in out[1].error
    assert out[0].error is None and out[2].error is None
    ref = HFModel(tiny_model, tokenizer, batch_size=1, progress=False).generate([reqs[0], reqs[2]])
    assert [out[0].text, out[2].text] == [r.text for r in ref]


def test_model_failure_in_a_batch_is_isolated(tiny_model, tokenizer):
    class Flaky(HFModel):
        def _generate_ids(self, prompts, max_new_tokens, shared=0):
            if any(len(p) > 60 for p in prompts):
                raise RuntimeError("out of memory")
            return super()._generate_ids(prompts, max_new_tokens, shared)

    reqs = [GenRequest("a", "tiny", 4), GenRequest("big", "many words " * 40, 4), GenRequest("b", "small", 4)]
    out = Flaky(tiny_model, tokenizer, batch_size=3, progress=False).generate(reqs)
    assert [r.error is None for r in out] == [True, False, True]
    assert "out of memory" in out[1].error


def test_render_prompt_templates(tokenizer):
    text, special = render_prompt("What?", tokenizer, "chat")
    assert "<|im_start|>user\nWhat?<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    assert special is False
    text, special = render_prompt("What?", tokenizer, "film")
    assert text == "[INST] What? [/INST]" and special is True
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert render_prompt(msgs, None, "chat")[0] == "[INST] a [/INST] b</s>[INST] c [/INST]"  # no template: FILM
    assert render_prompt("raw text", tokenizer, "raw") == ("raw text", True)
    with pytest.raises(ValueError):
        render_prompt("x", tokenizer, "alpaca")


def test_encode_for_local_uses_the_request_template_and_ids(tokenizer):
    chat = render_prompt("hi", tokenizer, "chat")
    as_chat = tokenizer(chat[0], add_special_tokens=chat[1])["input_ids"]
    assert encode_for_local(GenRequest("a", "hi", 4), tokenizer, "chat", 1000) == as_chat
    assert encode_for_local(GenRequest("a", "hi", 4, template="raw"), tokenizer, "chat", 1000) == \
        tokenizer("hi")["input_ids"]
    assert encode_for_local(GenRequest("a", "ignored", 4, ids=[1, 2, 3]), tokenizer, "chat", 1000) == [1, 2, 3]
    too_long = encode_for_local(GenRequest("a", "x", 4, ids=[1] * 10), tokenizer, "chat", 12)
    assert isinstance(too_long, GenResult) and "prompt too long: 10 tokens" in too_long.error


def test_protocol_and_backend_names():
    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from longcurate.core.errors import ConfigError

    gen = HFModel.__new__(HFModel)
    gen.tokenizer, gen.max_context, gen.template = None, 1, "chat"
    assert isinstance(gen, EvalModel)  # generate and loglikelihood
    with pytest.raises(ConfigError, match=r"eval.generate.backend must be one of \['hf', 'openai', 'vllm'\]"):
        build(RunConfig, {"eval": {"generate": {"backend": "nope"}}})


def test_openai_backend_key_from_env_and_errors(monkeypatch):
    pytest.importorskip("openai")
    from longcurate.config import RunConfig
    from longcurate.eval import openai_backend

    cfg = RunConfig()
    cfg.eval.generate.backend = "openai"
    cfg.eval.generate.openai.api_key_env = "LONGCURATE_TEST_KEY"
    monkeypatch.delenv("LONGCURATE_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="LONGCURATE_TEST_KEY"):
        openai_backend.from_config(cfg, "m")

    sys.path.insert(0, str(Path(__file__).parent))
    from fake_judge import FakeJudge  # the shared fake chat endpoint of tests/eval

    def script(case, n):
        return 500 if case == "case 2" else f" answer to {case} "

    with FakeJudge(script) as server:
        cfg.eval.generate.openai.base_url, cfg.eval.generate.openai.api_key_env = server.url, ""
        cfg.eval.generate.openai.max_retries, cfg.eval.generate.openai.backoff_initial_s = 1, 0.0
        cfg.eval.generate.openai.backoff_max_s = 0.0
        gen = openai_backend.from_config(cfg, "served", progress=False)
        out = gen.generate([GenRequest("a", "case 1", 5), GenRequest("b", "case 2", 5), GenRequest("c", "case 3", 7)])
        bodies = {r["case"]: r["body"] for r in server.requests}
    assert out[0] == GenResult("a", "answer to case 1") and out[2] == GenResult("c", "answer to case 3")
    assert not out[1].ok and out[1].text == "" and "HTTP 500" in out[1].error and server.calls["case 2"] == 2
    assert bodies["case 1"]["model"] == "served" and bodies["case 3"]["max_tokens"] == 7


@pytest.mark.integration
def test_smollm2_short_run(smollm2, tokenizer):
    gen = HFModel(smollm2, tokenizer, batch_size=2, progress=False)
    reqs = [GenRequest("cap", "What is the capital of France? Answer in one word.", 8),
            GenRequest("sum", "What is 2 + 2? Answer with a number.", 8)]
    batched = gen.generate(reqs)
    single = HFModel(smollm2, tokenizer, batch_size=1, progress=False).generate(reqs)
    assert [r.text for r in batched] == [r.text for r in single]
    assert "paris" in batched[0].text.lower()
    assert "4" in batched[1].text
