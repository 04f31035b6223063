"""`longcurate synth run --backend openai` end to end against the local OpenAI-compatible test server:
the samples are assembled like template ones, a re-run pays nothing (cache), and a request cap stops
the run cleanly (incomplete, resumable, nothing quarantined for it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from longcurate.cli import build_parser
from longcurate.config import resolve_config
from longcurate.synth.pipeline import run_synth

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai_server import FakeOpenAIServer  # noqa: E402

KEY_ENV = "LONGCURATE_TEST_SYNTH_KEY"
DOCS = [
    ("Lake Vostok", "Lake Vostok lies beneath the East Antarctic ice sheet at a depth of almost four kilometres. "
     "It is the largest of the subglacial lakes known on the continent, and its water has been isolated for "
     "millions of years. Russian scientists drilled into the lake in 2012 after decades of careful work."),
    ("Ottawa", "Ottawa is the capital city of Canada and sits on the south bank of the Ottawa River. The city "
     "was chosen as the capital by Queen Victoria in 1857, partly because it lay far from the American border. "
     "Its parliament buildings stand on a hill above the river and draw many visitors every summer."),
    ("Basalt", "Basalt is a fine-grained volcanic rock formed from the rapid cooling of lava rich in magnesium "
     "and iron. More than ninety percent of all volcanic rock on Earth is basalt, and it forms much of the "
     "ocean floor. Columns of basalt, such as those at the Giant's Causeway, form as thick lava flows cool."),
    ("Tardigrade", "Tardigrades are tiny water-dwelling animals with eight legs, often called water bears. "
     "They survive extreme temperatures, pressures and radiation by entering a dried-out state called "
     "cryptobiosis. Specimens have been revived after years without water in laboratory experiments."),
]


@pytest.fixture
def corpus(tmp_path) -> Path:
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({"id": t, "title": t, "text": x}) + "\n" for t, x in DOCS))
    return p


def _run(corpus: Path, out: Path, srv, tokenizer, *extra: str) -> dict:
    argv = ["synth", "run", "--backend", "openai", "--corpus", str(corpus), "--output", str(out), "--num-samples", "12",
            "--min-tokens", "200", "--max-tokens", "400", f"output_dir={out.parent}",
            f"synth.openai.base_url={srv.base_url}", f"synth.openai.api_key_env={KEY_ENV}",
            "synth.openai.backoff_initial_s=0.01", "synth.openai.max_retries=2", "synth.corpus.min_doc_tokens=20",
            "synth.segment_tokens=32", *extra]
    return run_synth(resolve_config(build_parser().parse_args(argv)), progress=False, tokenizer=tokenizer)


def test_openai_backend_through_the_pipeline(corpus, tmp_path, tokenizer, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-synth-test-key")
    out = tmp_path / "run" / "s.jsonl"
    with FakeOpenAIServer(api_key="sk-synth-test-key") as srv:
        stats = _run(corpus, out, srv, tokenizer, "synth.openai.max_requests=4")
        assert not stats["complete"] and stats["stopped"] > 0
        assert not out.with_name(out.name + ".done").exists()
        rej = out.with_name("s.rejected.jsonl")
        assert not rej.exists() or "exhausted" not in rej.read_text() and "max_requests" not in rej.read_text()
        sent_before = srv.requests_received
        stats = _run(corpus, out, srv, tokenizer)
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
        _run(corpus, again, srv, tokenizer)
        assert srv.requests_received == sent
        assert again.read_bytes() == out.read_bytes()
        assert sent_before <= 4
    text = "".join(p.read_text(errors="replace") for p in out.parent.rglob("*") if p.is_file())
    assert "sk-synth-test-key" not in text
