"""The one client policy for paid endpoints, on synth's QA endpoint (issue 22): a local endpoint goes
through every way of not answering (500, a hang past the timeout, 400 to everything, a 200 whose body
is not JSON, `choices: []`, empty and null content, content that is not QA JSON), one run each, then
recovers. Every broken run stops early (circuit breaker), exits non-zero with the samples pending and
writes no `.done`; nothing a broken run got is cached; the run after the recovery completes, its
samples equal an uninterrupted run's, and no usable answer was paid for twice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from longcurate.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai_server import FakeOpenAIServer  # noqa: E402

KEY_ENV = "LONGCURATE_TEST_PAID_KEY"
KEY = "sk-paid-endpoint-test-key"
BREAKER, CONCURRENCY = 3, 2
FAULTS = ["500", "hang", "400", "body_malformed", "no_choices", "empty", "null", "malformed"]


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def _argv(corpus: Path, root: Path, url: str) -> list[str]:
    return ["synth", "run", "--backend", "openai", "--corpus", str(corpus), "--num-samples", "8",
            "--min-tokens", "200", "--max-tokens", "400", "--no-progress", f"output_dir={root}",
            f"synth.openai.base_url={url}", f"synth.openai.api_key_env={KEY_ENV}",
            "synth.openai.max_retries=1", "synth.openai.backoff_initial_s=0.01", "synth.openai.backoff_max_s=0.02",
            "synth.openai.timeout_s=0.3", f"synth.openai.max_consecutive_failures={BREAKER}",
            f"synth.openai.max_concurrency={CONCURRENCY}", "synth.batch_size=4", "synth.corpus.min_doc_tokens=20",
            "synth.segment_tokens=32"]


def test_every_way_of_not_answering_then_recovery(docs_corpus, tmp_path, capsys):
    root = tmp_path / "run"
    with FakeOpenAIServer(api_key=KEY, slow_s=1.0) as srv:
        argv = _argv(docs_corpus, root, srv.base_url)
        for fault in FAULTS:
            srv.clear()
            srv.always(fault)
            before = srv.requests_received
            code = main(argv)
            err = capsys.readouterr().err
            assert code == 75 and "8 pending" in err and "circuit breaker" in err, (fault, err)
            assert "Traceback" not in err, fault
            assert srv.requests_received - before <= BREAKER + CONCURRENCY, fault  # stopped early
            assert not (root / "samples.jsonl.done").exists(), fault
            assert not list((root / "openai-cache").glob("*/*.json")), fault  # a non-answer is never cached
        assert not srv.answered
        srv.clear()  # the endpoint recovers
        assert main(argv) == 0
        done = json.loads((root / "samples.jsonl.done").read_text())
        assert done["pending"] == 0 and done["in_file"] == 8
        assert srv.answered and set(srv.answered.values()) == {1}  # no usable answer was paid twice
        sent = srv.requests_received
        assert main(argv) == 0 and srv.requests_received == sent  # finished: a rerun sends nothing
        ref = tmp_path / "ref"  # the same run, never interrupted, in a fresh folder (its own cache)
        assert main(_argv(docs_corpus, ref, srv.base_url)) == 0
    assert (root / "samples.jsonl").read_bytes() == (ref / "samples.jsonl").read_bytes()


def test_an_endpoint_that_answers_200_with_nothing_costs_a_few_requests(docs_corpus, tmp_path, capsys):
    """The issue's case: empty 200 replies drew ~600 paid requests for 5 samples; with the default
    settings the breaker now stops the run at `max_consecutive_failures` (20) plus what was in flight."""
    with FakeOpenAIServer(api_key=KEY) as srv:
        srv.always("empty")
        argv = ["synth", "run", "--backend", "openai", "--corpus", str(docs_corpus), "--num-samples", "5",
                "--min-tokens", "200", "--max-tokens", "400", "--no-progress", f"output_dir={tmp_path}",
                f"synth.openai.base_url={srv.base_url}", f"synth.openai.api_key_env={KEY_ENV}",
                "synth.openai.backoff_initial_s=0.001", "synth.openai.backoff_max_s=0.002",
                "synth.corpus.min_doc_tokens=20", "synth.segment_tokens=32"]
        assert main(argv) != 0
        assert 20 <= srv.requests_received <= 20 + 8  # the default breaker and concurrency
    err = capsys.readouterr().err
    assert "5 pending" in err and "not an answer: empty content" in err
