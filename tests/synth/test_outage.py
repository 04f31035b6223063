"""An endpoint outage loses no sample and pays no request twice (issue 14): against a local endpoint
that first refuses connections, then answers 400 to everything, then recovers, the first two runs stop
early (circuit breaker) with pending samples, exit 75 ("incomplete", `core.errors.EXIT_INCOMPLETE`) with
one line naming the file, and write no `.done`; the third completes,
and its samples equal an uninterrupted run's. An item the endpoint refuses on its own is recorded with
the server's reason and tried again by `--retry-failed`."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.core.errors import EXIT_INCOMPLETE

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai_server import FakeOpenAIServer  # noqa: E402

KEY_ENV = "LONGCURATE_TEST_OUTAGE_KEY"
KEY = "sk-outage-test-key"



@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _argv(corpus: Path, root: Path, port: int, *extra: str) -> list[str]:
    return ["synth", "run", "--backend", "openai", "--corpus", str(corpus), "--num-samples", "12",
            "--min-tokens", "200", "--max-tokens", "400", "--no-progress", f"output_dir={root}",
            f"synth.openai.base_url=http://127.0.0.1:{port}/v1", f"synth.openai.api_key_env={KEY_ENV}",
            "synth.openai.max_retries=1", "synth.openai.backoff_initial_s=0.01", "synth.openai.backoff_max_s=0.02",
            "synth.openai.timeout_s=5", "synth.openai.max_consecutive_failures=3", "synth.openai.max_concurrency=2",
            "synth.batch_size=4", "synth.corpus.min_doc_tokens=20", "synth.segment_tokens=32", *extra]


def _done(root: Path) -> Path:
    return root / "samples.jsonl.done"


def test_outage_then_recovery_equals_an_uninterrupted_run(docs_corpus, tmp_path, capsys):
    port = _free_port()
    root = tmp_path / "run"
    argv = _argv(docs_corpus, root, port)
    # 1. nothing listens on the port: connections are refused
    assert main(argv) == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"longcurate: synth incomplete: {root / 'samples.jsonl'}: 12 pending (circuit breaker")
    assert line.endswith("(rerun to retry)")
    assert not _done(root).exists()
    with FakeOpenAIServer(api_key=KEY, port=port) as srv:
        # 2. the endpoint answers 400 to everything: the breaker stops the run after 3 refusals in a row
        srv.always("400")
        assert main(argv) == EXIT_INCOMPLETE
        err = capsys.readouterr().err
        assert "synth incomplete:" in err and "12 pending" in err and "HTTP 400" in err
        assert not _done(root).exists() and srv.requests_received <= 3 + 2  # + what was in flight
        assert not (root / "samples.jsonl").exists() or not (root / "samples.jsonl").read_text()
        # 3. the endpoint recovers: the run completes
        srv.clear()
        assert main(argv) == 0
        assert _done(root).exists() and json.loads(_done(root).read_text())["pending"] == 0
        assert srv.answered and set(srv.answered.values()) == {1}  # no request was paid twice
        # the same run, never interrupted, in a fresh folder (its own cache)
        ref = tmp_path / "ref"
        assert main(_argv(docs_corpus, ref, port)) == 0
    assert (root / "samples.jsonl").read_bytes() == (ref / "samples.jsonl").read_bytes()
    assert len((root / "samples.jsonl").read_text().splitlines()) == 12


def test_refused_items_are_recorded_and_retried_on_request(docs_corpus, tmp_path, capsys):
    with FakeOpenAIServer(api_key=KEY) as srv:
        port = int(srv.base_url.rsplit(":", 1)[1].split("/")[0])
        root, ref = tmp_path / "run", tmp_path / "ref"
        assert main(_argv(docs_corpus, ref, port)) == 0
        srv.always("400", marker="Ottawa")  # this endpoint refuses every question about Ottawa
        assert main(_argv(docs_corpus, root, port, "synth.openai.max_consecutive_failures=50")) == 0
        done = json.loads(_done(root).read_text())
        assert done["refused"] > 0 and done["pending"] == 0 and done["in_file"] == 12 - done["refused"]
        rejected = [json.loads(x) for x in (root / "samples.rejected.jsonl").read_text().splitlines()]
        assert [r["reason"] for r in rejected] == ["refused by the endpoint: HTTP 400: This request was refused "
                                                   "by the fake server."] * done["refused"]
        capsys.readouterr()
        sent = srv.requests_received
        assert main(_argv(docs_corpus, root, port)) == 0  # finished: a plain re-run does nothing
        assert srv.requests_received == sent
        srv.clear()
        assert main(_argv(docs_corpus, root, port, "--retry-failed")) == 0
        done = json.loads(_done(root).read_text())
        assert done["refused"] == 0 and done["written"] == len(rejected) and done["reordered"] > 0
    assert (root / "samples.jsonl").read_bytes() == (ref / "samples.jsonl").read_bytes()


def test_longcurate_run_stops_after_an_incomplete_synth_and_exits_75(docs_corpus, tmp_path, capsys):
    """`longcurate run` runs no stage after one that left items pending, records what it did in its
    manifest and exits 75 naming what is pending."""
    root = tmp_path / "run"
    overrides = [a for a in _argv(docs_corpus, root, _free_port())[2:] if "=" in a]  # nothing listens there
    argv = ["run", "stages=[synth,select]", "synth.backend=openai", f"synth.corpus.path={docs_corpus}",
            "synth.num_samples=12", "synth.min_tokens=200", "synth.max_tokens=400", *overrides]
    assert main(argv) == EXIT_INCOMPLETE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"longcurate: run incomplete: {root / 'samples.jsonl'}: 12 pending (circuit breaker")
    assert not (root / "select").exists() and not _done(root).exists()
    manifest = json.loads((root / "run.manifest.json").read_text())
    assert list(manifest["stats"]) == ["synth"] and manifest["stats"]["synth"]["pending"] == 12
