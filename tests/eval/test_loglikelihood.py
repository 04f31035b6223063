"""The model interface's `loglikelihood`: results in request order for every backend; the HF backend's
equals the scoring engine's on the generation prompt + answer; an OpenAI-compatible server's comes from
the completions API's echoed log-probs (a fake server on 127.0.0.1, hand-computed values), and a server
without them is a one-line user error; vLLM's prompt log-probs are averaged over the answer's tokens."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from longcurate.cli import main
from longcurate.eval.model import EvalModel, LLRequest

CHUNK = 3  # the fake server's "tokens": runs of 3 characters


def token_logprob(i: int) -> float:
    return -0.1 * (1 + i % 4)


class FakeCompletions:
    """`POST /v1/completions` with echo + logprobs: the prompt cut into 3-character tokens, the i-th
    with log-prob -0.1 * (1 + i % 4) (the first None, as servers give it), then one generated token.
    `status` answers every request with that HTTP status instead."""

    def __init__(self, status: int | None = None):
        self.status, self.bodies = status, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.bodies.append(body)
                code, payload = (fake.status, {"error": {"message": "echo is not supported", "type": "invalid"}}) \
                    if fake.status else (200, fake.reply(body))
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def reply(body: dict) -> dict:
        text = body["prompt"]
        offsets = list(range(0, len(text), CHUNK))
        tokens = [text[o:o + CHUNK] for o in offsets] + ["X"]
        logprobs = [None] + [token_logprob(i) for i in range(1, len(offsets))] + [-9.0]
        return {"id": "c", "object": "text_completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "text": text + "X", "finish_reason": "length",
                             "logprobs": {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": None,
                                          "text_offset": offsets + [len(text)]}}],
                "usage": {"prompt_tokens": len(offsets), "completion_tokens": 1, "total_tokens": len(offsets) + 1}}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def reference_nll(text: str, start: int) -> tuple[float, int]:
    """Straightforward: every 3-character token holding a character at or after `start`."""
    values = [-token_logprob(i) for i, o in enumerate(range(0, len(text), CHUNK)) if o + CHUNK > start]
    return sum(values) / len(values), len(values)


def openai_model(url: str, template: str = "chat"):
    from longcurate.config import RunConfig
    from longcurate.core.config import build
    from longcurate.eval import openai_backend

    cfg = build(RunConfig, {"eval": {"generate": {"backend": "openai", "template": template,
                                                  "openai": {"base_url": url, "api_key_env": "", "max_retries": 0}}}})
    return openai_backend.from_config(cfg, "served-model")


def test_hf_results_keep_the_request_order_around_failures(tiny_model, tokenizer):
    from longcurate.core.engine import ScoringEngine
    from longcurate.eval.hf_backend import HFModel
    from longcurate.eval.render import answer_sequence

    reqs = [LLRequest("a", "What is the secret?", "Cardamom from Kerala."), LLRequest("empty", "Say nothing.", ""),
            LLRequest("long", "word " * 200, "x"), LLRequest("b", "Quote it.", "The harbour bakery.")]
    model = HFModel(tiny_model, tokenizer, max_context=120, progress=False)
    assert isinstance(model, EvalModel)
    out = model.loglikelihood(reqs)
    assert [r.id for r in out] == ["a", "empty", "long", "b"]
    assert out[1].error == "empty answer: no answer tokens" and out[2].error.startswith("too long:")
    engine = ScoringEngine(tiny_model, show_progress=False).response_nll(
        [answer_sequence(r, tokenizer, "chat") for r in (reqs[0], reqs[3])])
    assert [(r.nll, r.n_tokens) for r in (out[0], out[3])] == [(e.nll, e.n_tokens) for e in engine]


def test_openai_loglikelihood_from_echoed_logprobs():
    with FakeCompletions() as server:
        model = openai_model(server.url)
        out = model.loglikelihood([LLRequest("q", "Q", "abcd"), LLRequest("e", "Q", "")])
        body = server.bodies[0]
    # "[INST] Q [/INST]" (16 characters, FILM's template: the client has no tokenizer) + "abcd": tokens at
    # 15 ("]ab", across the boundary: counted with the answer) and 18 ("cd"); the generated "X" is not
    assert body["prompt"] == "[INST] Q [/INST]abcd" and body["echo"] is True and body["logprobs"] == 0
    assert body["model"] == "served-model" and body["temperature"] == 0
    assert out[0].ok and out[0].n_tokens == 2 and out[0].nll == pytest.approx((0.2 + 0.3) / 2)
    assert out[1].error == "empty answer: no answer tokens" and len(server.bodies) == 1  # nothing sent for it


def test_openai_raw_template_sends_the_prompt_as_is():
    with FakeCompletions() as server:
        out = openai_model(server.url, template="raw").loglikelihood([LLRequest("r", "Context: x. Q?", " An answer.")])
        assert server.bodies[0]["prompt"] == "Context: x. Q? An answer."
    assert (out[0].nll, out[0].n_tokens) == pytest.approx(reference_nll("Context: x. Q? An answer.", 14))


@pytest.mark.parametrize("status", [404, 400])
def test_a_server_without_logprobs_is_a_user_error(status):
    from longcurate.core.errors import UserError

    with FakeCompletions(status=status) as server:
        with pytest.raises(UserError, match="the openai backend has no log-likelihood"):
            openai_model(server.url).loglikelihood([LLRequest("q", "Q", "abc")])


def test_vllm_prompt_logprobs_are_averaged_over_the_answer():
    from longcurate.eval.vllm_backend import answer_result

    class Logprob:
        def __init__(self, v):
            self.logprob = v

    ids = [5, 6, 7, 8, 9]
    prompt_logprobs = [None, {6: Logprob(-1.0)}, {7: Logprob(-2.0), 1: Logprob(-0.1)}, {8: Logprob(-0.5)},
                       {9: Logprob(-1.5), 2: Logprob(-0.2)}]
    res = answer_result(LLRequest("v", "p", "a"), ids, 3, prompt_logprobs)
    assert (res.nll, res.n_tokens) == (pytest.approx(1.0), 2)  # tokens 8 and 9: (0.5 + 1.5) / 2


def test_eval_nll_through_an_openai_compatible_server(tmp_path, tokenizer, capsys):
    """`eval nll --backend openai` end to end: every probe scored by the server's echoed log-probs."""
    from longcurate.core.jsonl import read_jsonl

    out = tmp_path / "run"
    argv = ["eval", "nll", "--backend", "openai", f"output_dir={out}", "eval.probes.context_tokens=256",
            "eval.probes.num_positions=2", "eval.probes.tasks=[database]", "eval.generate.openai.api_key_env=",
            "--model", "smollm2-135m-instruct", "--label", "served", "eval.nll.heldout=false"]
    with FakeCompletions() as server:
        assert main([*argv, f"eval.generate.openai.base_url={server.url}"]) == 0
        sent = {b["prompt"] for b in server.bodies}
    items = [r for _, r in read_jsonl(out / "eval" / "served" / "nll" / "items.jsonl")]
    probes = {r["id"]: r for _, r in read_jsonl(out / "eval" / "probes.jsonl")}
    assert len(items) == len(probes) == len(sent) == 2
    for it in items:
        text = next(p for p in sent if p.endswith(probes[it["id"]]["answer"]))
        assert (it["nll"], it["n_tokens"]) == pytest.approx(reference_nll(text, len(text) - len(probes[it["id"]]["answer"])))
    assert "nll on smollm2-135m-instruct" in capsys.readouterr().out


def test_eval_nll_against_a_server_without_logprobs_is_one_line(tmp_path, capsys):
    with FakeCompletions(status=404) as server:
        code = main(["eval", "nll", "--backend", "openai", f"output_dir={tmp_path / 'run'}",
                     "eval.probes.context_tokens=256", "eval.probes.num_positions=1", "eval.probes.tasks=[database]",
                     "eval.generate.openai.api_key_env=", f"eval.generate.openai.base_url={server.url}",
                     "--model", "smollm2-135m-instruct", "--label", "served", "eval.nll.heldout=false"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("longcurate: error:")]
    assert code == 2 and len(errors) == 1 and "has no log-likelihood" in errors[0] and "Traceback" not in err
