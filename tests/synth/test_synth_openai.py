"""`longcurate synth run --backend openai` end to end against the local OpenAI-compatible test server:
the samples are assembled like template ones, a re-run pays nothing (cache), a request cap stops the
run cleanly (incomplete, resumable, nothing quarantined for it), and a multi-hop request shows IN2's
numbered pieces of one text."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from longcurate.cli import build_parser
from longcurate.config import resolve_config
from longcurate.synth.pipeline import run_synth

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from sample_docs import DOCS  # noqa: E402

KEY_ENV = "LONGCURATE_TEST_SYNTH_KEY"



def _run(corpus: Path, out: Path, srv, tokenizer, *extra: str) -> dict:
    argv = ["synth", "run", "--backend", "openai", "--corpus", str(corpus), "--output", str(out), "--num-samples", "12",
            "--min-tokens", "200", "--max-tokens", "400", f"output_dir={out.parent}",
            f"synth.openai.base_url={srv.base_url}", f"synth.openai.api_key_env={KEY_ENV}",
            "synth.openai.backoff_initial_s=0.01", "synth.openai.max_retries=2", "synth.corpus.min_doc_tokens=20",
            "synth.segment_tokens=32", *extra]
    return run_synth(resolve_config(build_parser().parse_args(argv)), progress=False, tokenizer=tokenizer)


def test_openai_backend_through_the_pipeline(docs_corpus, tmp_path, tokenizer, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-synth-test-key")
    out = tmp_path / "run" / "s.jsonl"
    with FakeOpenAIServer(api_key="sk-synth-test-key") as srv:
        stats = _run(docs_corpus, out, srv, tokenizer, "synth.openai.max_requests=4")
        assert not stats["complete"] and stats["pending"] > 0
        assert not out.with_name(out.name + ".done").exists()
        rej = out.with_name("s.rejected.jsonl")
        assert not rej.exists() or "exhausted" not in rej.read_text() and "max_requests" not in rej.read_text()
        sent_before = srv.requests_received
        stats = _run(docs_corpus, out, srv, tokenizer)
        assert stats["complete"]
        sent = srv.requests_received
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert [r["id"] for r in lines] == sorted(r["id"] for r in lines) and len(lines) == 12
        for r in lines:
            assert r["source"]["generator"].startswith("openai")
            for g in r["gold"]:
                gold_text = r["context"][g["char_start"]:g["char_end"]]
                assert any(gold_text in x for _, x in DOCS)
            assert r["messages"][1]["content"] == r["response"]
        # the same run again, from scratch in a new file: every answer comes from the cache
        again = tmp_path / "run" / "s2.jsonl"
        _run(docs_corpus, again, srv, tokenizer)
        assert srv.requests_received == sent
        assert again.read_bytes() == out.read_bytes()
        assert sent_before <= 4
    text = "".join(p.read_text(errors="replace") for p in out.parent.rglob("*") if p.is_file())
    assert "sk-synth-test-key" not in text


def test_multihop_request_shows_numbered_pieces_of_one_text(docs_corpus, tmp_path, tokenizer, monkeypatch):
    """IN2's multi-hop request: the segments of one document as numbered pieces, the question asked to
    need at least two of them and never to say "the context" or "the passage"."""
    monkeypatch.setenv(KEY_ENV, "sk-synth-test-key")
    out = tmp_path / "run" / "s.jsonl"
    with FakeOpenAIServer(api_key="sk-synth-test-key") as srv:
        stats = _run(docs_corpus, out, srv, tokenizer, "synth.multihop_fraction=0.5")
        bodies = list(srv.bodies)
    assert stats["complete"]
    texts = dict(DOCS)
    multihop = [b["messages"][-1]["content"] for b in bodies if "<piece" in b["messages"][-1]["content"]]
    assert multihop, "no multi-hop request was sent"
    for user in multihop:
        assert "<passage" not in user and user.count('<text title="') == 1
        title = re.search(r'<text title="([^"]*)">', user).group(1)
        pieces = re.findall(r'<piece id="(\d+)">\n(.*?)\n</piece>', user, re.S)
        assert [int(i) for i, _ in pieces] == list(range(1, len(pieces) + 1)) and len(pieces) >= 2
        assert all(text in texts[title] for _, text in pieces)  # pieces of that one text ...
        assert [texts[title].index(t) for _, t in pieces] == sorted(texts[title].index(t) for _, t in pieces)
        assert "at least two of these pieces" in user and '"the context"' not in user.split("Rules:")[0]
        assert "according to the passage" in user  # ... named among the phrases the question must avoid
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    multi_rows = [r for r in rows if r["source"]["generator"].endswith(":multihop")]
    assert multi_rows
    for r in multi_rows:
        (doc,) = set(r["source"]["doc_ids"])
        assert len(r["gold"]) >= 2
        assert all(r["context"][g["char_start"]:g["char_end"]] in texts[doc] for g in r["gold"])
