"""The one client policy for paid endpoints, on the judge (issue 22): `eval longbench-chat --score-only`
(its result in the run's layout, `<output dir>/pred/longbench-chat/`, the label from the file's name)
against a judge that goes through every way of not rating (500, a hang past the timeout, 400, a 200
whose body is not JSON, `choices: []`, null and empty content, no rating, `[[15]]` and `[[-3]]` on the
1-10 scale), one run each, then recovers. Every broken run exits 75 (incomplete) with nothing rated and
nothing cached; the run after the recovery exits 0 with the result of an uninterrupted run, and no
usable rating was paid for twice. A cache line without a rating, as older versions wrote, is ignored."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.core.endpoint import NonAnswer
from longcurate.core.errors import EXIT_INCOMPLETE
from longcurate.core.jsonl import dumps
from longcurate.eval.judge import first_integer_rating, last_bracket_rating, rating_on_scale

sys.path.insert(0, str(Path(__file__).parent))
from fake_judge import HANG, NO_CHOICES, NOT_JSON, FakeJudge  # noqa: E402

KEY_ENV = "LONGCURATE_TEST_JUDGE_FAULTS_KEY"
TEMPLATE = "[Question]\n{}\n[Reference]\n{}\n[A1]\n{}\n[R1] {}\n[Answer to rate]\n{}"
CASES = 3
GOOD = {f"case {i}": f"Solid answer. Rating: [[{i + 5}]]" for i in range(1, CASES + 1)}
FAULTS = [500, HANG, 400, NOT_JSON, NO_CHOICES, None, "", "I cannot rate this.", "Rating: [[15]]", "Rating: [[-3]]"]
BREAKER, CONCURRENCY = 3, 2


@pytest.fixture()
def chat_data(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-judge-faults-test")
    data = tmp_path / "LongBench_Chat"
    data.mkdir()
    cases = [{"idx": i, "query": f"Question of case {i}?", "prompt": f"context of case {i}", "answer": f"ref {i}"}
             for i in range(1, CASES + 1)]
    (data / "test_cases.json").write_text(json.dumps(cases))
    (data / "few_shots.json").write_text(json.dumps([[{"answer": f"shot {i}", "score": 5}] for i in range(CASES)]))
    (data / "prompt_fs.txt").write_text(TEMPLATE)
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps({"idx": i, "pred": f"answer to case {i}"}) + "\n" for i in range(1, CASES + 1)))
    return data, pred


def score(data: Path, pred: Path, out: Path, url: str) -> int:
    return main(["eval", "longbench-chat", "--data", str(data), "--score-only", str(pred), "--output-dir", str(out),
                 f"eval.judge.base_url={url}", f"eval.judge.api_key_env={KEY_ENV}", "eval.judge.max_retries=1",
                 "eval.judge.timeout_s=0.3", "eval.judge.backoff_initial_s=0.01", "eval.judge.backoff_max_s=0.02",
                 f"eval.judge.max_consecutive_failures={BREAKER}", f"eval.judge.max_concurrency={CONCURRENCY}"])


def ratings(out: Path) -> dict[int, float | None]:
    return {c["idx"]: c["rating"] for c in json.loads((out / "pred" / "longbench-chat" / "result.json").read_text())["cases"]}


def test_every_way_of_not_rating_then_recovery(chat_data, tmp_path, capsys):
    data, pred = chat_data
    out = tmp_path / "out"
    mode = {"reply": FAULTS[0]}
    with FakeJudge(lambda case, n: GOOD[case] if mode["reply"] == "fixed" else mode["reply"], hang_s=1.0) as judge:
        for fault in FAULTS:
            mode["reply"] = fault
            before = len(judge.requests)
            assert score(data, pred, out, judge.url) == EXIT_INCOMPLETE, fault
            err = capsys.readouterr().err
            assert "eval longbench-chat incomplete" in err and "Traceback" not in err, fault
            result = json.loads((out / "pred" / "longbench-chat" / "result.json").read_text())
            assert result["n_rated"] == 0 and result["complete"] is False and result["score"] is None, fault
            assert len(judge.requests) - before <= BREAKER + CONCURRENCY, fault  # the breaker stopped it
            cache = out / "judge-cache" / "judge.jsonl"
            assert not cache.exists() or not cache.read_text(), fault  # nothing unusable is kept
        mode["reply"] = "fixed"
        assert score(data, pred, out, judge.url) == 0
        assert ratings(out) == {1: 6, 2: 7, 3: 8}
        assert all(judge.replies[case].count(GOOD[case]) == 1 for case in GOOD)  # each rating paid for once
        sent = len(judge.requests)
        assert score(data, pred, out, judge.url) == 0 and len(judge.requests) == sent  # all from the cache
        ref = tmp_path / "ref"  # an uninterrupted run, with its own cache
        assert score(data, pred, ref, judge.url) == 0
    assert ratings(ref) == ratings(out)
    assert json.loads((ref / "pred" / "longbench-chat" / "result.json").read_text())["score"] == json.loads((out / "pred" / "longbench-chat" / "result.json").read_text())["score"]


def test_a_cached_reply_without_a_rating_is_asked_again(chat_data, tmp_path):
    """An older version kept every reply; a kept reply without a rating must not fail its case for good."""
    data, pred = chat_data
    out = tmp_path / "out"
    replies = {"reply": "I cannot rate this."}
    with FakeJudge(lambda case, n: replies["reply"] if case == "case 1" else GOOD[case]) as judge:
        assert score(data, pred, out, judge.url) == EXIT_INCOMPLETE
        lines = [json.loads(x) for x in (out / "pred" / "longbench-chat" / "judge-cache" / "judge.jsonl").read_text().splitlines()]
        assert len(lines) == 2  # cases 2 and 3 only
        asked = next(r["body"] for r in judge.requests if r["case"] == "case 1")
        payload = {"model": asked["model"], "messages": asked["messages"], "temperature": 0.0}
        old_key = hashlib.sha256(dumps({**payload, "try": 0}).encode()).hexdigest()
        with open(out / "pred" / "longbench-chat" / "judge-cache" / "judge.jsonl", "a") as f:  # what an older version kept for case 1
            f.write(json.dumps({"key": old_key, "model": "gpt-4", "content": "I cannot rate this.",
                                "usage": {}}) + "\n")
        replies["reply"] = "Rating: [[4]]"
        assert score(data, pred, out, judge.url) == 0
        assert ratings(out) == {1: 4, 2: 7, 3: 8}


@pytest.mark.parametrize("reply, rule, value", [
    ("[[7]]", last_bracket_rating, 7), ("first [[2]] then [[7.5/10]]", last_bracket_rating, 7.5),
    ("[[10]]", first_integer_rating, 10), ("[[1]]", last_bracket_rating, 1),
    ("[[15]]", last_bracket_rating, None), ("[[-3]]", last_bracket_rating, None), ("[[0]]", first_integer_rating, None),
    ("[[10.5]]", last_bracket_rating, None), ("no rating", last_bracket_rating, None), ("[[-3]]", first_integer_rating, None),
])
def test_a_rating_must_lie_on_the_scale(reply, rule, value):
    accept = rating_on_scale(rule)
    if value is None:
        with pytest.raises(NonAnswer):
            accept(reply, None)
    else:
        assert accept(reply, None) == value


def test_the_request_cap_leaves_the_rest_pending(chat_data, tmp_path, capsys):
    """`eval.judge.max_requests` stops the judge: the cases not asked are pending, the command ends
    incomplete, and the next run asks only for them."""
    data, pred = chat_data
    out = tmp_path / "out"
    with FakeJudge(lambda case, n: GOOD[case]) as judge:
        argv = ["eval", "longbench-chat", "--data", str(data), "--score-only", str(pred), "--output-dir", str(out),
                f"eval.judge.base_url={judge.url}", f"eval.judge.api_key_env={KEY_ENV}",
                "eval.judge.max_concurrency=1", "eval.judge.max_requests=2"]
        assert main(argv) == EXIT_INCOMPLETE
        result = json.loads((out / "pred" / "longbench-chat" / "result.json").read_text())
        assert (result["n_rated"], result["n_pending"], result["n_failed"]) == (2, 1, 0)
        pending = next(c for c in result["cases"] if c["status"] == "pending")
        assert pending["error"] == "eval.judge.max_requests (2) reached"
        assert main(argv) == 0 and len(judge.requests) == 3
    assert ratings(out) == {1: 6, 2: 7, 3: 8}
    capsys.readouterr()
