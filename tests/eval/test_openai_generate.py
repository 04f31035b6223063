"""Generation through an OpenAI-compatible endpoint is paid too, so it follows the one endpoint policy
(issue 22): a fake server answers `eval probes` (backend openai) in every way but an answer, one run
each: 500, a 200 whose body is not JSON, `choices: []`, null content, empty content, blank content.
Each broken run stops at the circuit breaker, writes no prediction for any item (a non-answer is
never used or kept), no completion marker, and exits 75 with the items pending; the run after the
recovery exits 0 with the predictions of an uninterrupted run, and no answer was paid for twice. The
needle's judge, left with cases pending or failed, ends its command incomplete too."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.core.errors import EXIT_INCOMPLETE

sys.path.insert(0, str(Path(__file__).parent))
from fake_judge import NO_CHOICES, NOT_JSON, FakeJudge  # noqa: E402

pytest.importorskip("openai")

FAULTS = [500, NOT_JSON, NO_CHOICES, None, "", "   "]
BREAKER = 3
ITEMS = ["eval.probes.context_tokens=256", "eval.probes.num_positions=3", "eval.probes.tasks=[database]"]


def prompt_case(body: dict) -> str:
    """Each probe's request by a hash of its prompt (the server's view of "which item")."""
    return hashlib.sha256(body["messages"][-1]["content"].encode()).hexdigest()[:10]


def served(root: Path, url: str) -> list[str]:
    return ["eval", "probes", "--model", "served-model", "--label", "served", "--backend", "openai",
            "--max-new-tokens", "8", f"output_dir={root}", *ITEMS, f"eval.generate.openai.base_url={url}",
            "eval.generate.openai.api_key_env=", "eval.generate.openai.max_retries=1",
            "eval.generate.openai.backoff_initial_s=0", "eval.generate.openai.backoff_max_s=0",
            f"eval.generate.openai.max_consecutive_failures={BREAKER}", "eval.generate.openai.max_concurrency=1",
            "eval.generate.openai.timeout_s=5"]


def build_items(root: Path, model: Path) -> None:
    assert main(["eval", "build", "--only", "probes", f"model={model}", f"output_dir={root}", *ITEMS]) == 0


def predictions(root: Path) -> list[dict]:
    path = root / "eval" / "served" / "probes" / "predictions.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_every_way_of_not_answering_then_recovery(tmp_path, model_dirs, capsys):
    ref = tmp_path / "reference"
    build_items(ref, model_dirs / "base")
    with FakeJudge(lambda case, n: f"answer {case}", case_of=prompt_case) as server:
        assert main(served(ref, server.url)) == 0  # an uninterrupted run
    root = tmp_path / "run"
    build_items(root, model_dirs / "base")
    state: dict = {"recovered": False}
    with FakeJudge(lambda case, n: f"answer {case}" if state["recovered"] else state["fault"],
                   case_of=prompt_case) as server:
        for fault in FAULTS:
            state["fault"] = fault
            before = len(server.requests)
            assert main(served(root, server.url)) == EXIT_INCOMPLETE, fault
            err = capsys.readouterr().err
            assert "eval probes incomplete" in err and "3 failed" in err and "Traceback" not in err
            assert len(server.requests) - before <= BREAKER, fault  # the breaker, not every item and retry
            assert predictions(root) == [] and not list((root / "eval" / "served").rglob("*.done")), fault
        state["recovered"] = True
        assert main(served(root, server.url)) == 0
        answered = {case: sum(str(x).startswith("answer") for x in replies) for case, replies in server.replies.items()}
    assert sorted(answered.values()) == [1, 1, 1]  # each item's answer paid for once
    assert predictions(root) == predictions(ref)  # as an uninterrupted run
    assert json.loads((root / "eval" / "served" / "probes" / "results.json").read_text())["n_failed"] == 0
    assert main(served(root, "http://127.0.0.1:9/v1")) == 0  # complete: nothing is sent again
    capsys.readouterr()


def test_a_failing_needle_judge_ends_the_command_incomplete(tmp_path, model_dirs, capsys):
    needle = ["eval", "needle", "--model", str(model_dirs / "base"), "--judge", f"output_dir={tmp_path}",
              "eval.needle.lengths=[96]", "eval.needle.depths=[50]", "eval.generate.dtype=float32",
              "eval.generate.max_new_tokens=3", "eval.judge.api_key_env=", "eval.judge.max_retries=0",
              "eval.judge.backoff_initial_s=0", "eval.judge.backoff_max_s=0"]
    with FakeJudge(lambda case, n: 500) as judge:
        assert main([*needle, f"eval.judge.base_url={judge.url}"]) == EXIT_INCOMPLETE
        assert "eval needle incomplete" in capsys.readouterr().err
    with FakeJudge(lambda case, n: "Rating: [[7]]") as judge:
        assert main([*needle, f"eval.judge.base_url={judge.url}"]) == 0
    results = json.loads((tmp_path / "eval" / "base" / "needle" / "results.json").read_text())
    assert results["judge"]["n_rated"] == 1 and results["judge"]["n_pending"] == 0
