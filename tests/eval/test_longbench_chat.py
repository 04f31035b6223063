"""LongBench-Chat `--score-only` and the needle's judge rating against a fake OpenAI-compatible judge on
127.0.0.1: ratings (the last `[[...]]`), a reply without one (asked again, then failed, never 0, and the
command ends incomplete), a 500 and a 429 (retried with backoff); the score is the hand-computed mean x
10; the key is in no file or log; a rerun sends requests only for the case not rated yet."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.config import RunConfig
from longcurate.eval import longbench_chat
from longcurate.eval.needle import judge_needles

sys.path.insert(0, str(Path(__file__).parent))
from fake_judge import FakeJudge  # noqa: E402

KEY = "sk-test-Zq81-never-written-anywhere"
KEY_ENV = "LONGCURATE_TEST_JUDGE_KEY"
FAST = ["eval.judge.backoff_initial_s=0.01", "eval.judge.backoff_max_s=0.02"]
TEMPLATE = ("[Question]\n{}\n[Reference]\n{}\n[A1]\n{}\n[R1] {}\n[A2]\n{}\n[R2] {}\n[A3]\n{}\n[R3] {}\n"
            "[Answer to rate]\n{}")


def chat_script(case: str, n: int):
    return {
        "case 1": ["Fine answer. Rating: [[8]]"],
        "case 2": ["At first [[3]], on reflection: [[7.5/10]]"],  # the last [[...]], its first number
        "case 3": ["I would rather not say.", "Rating: [[6]]"],  # no rating: asked again
        "case 4": [500, 429, "[[9]]"],  # retried with backoff
        "case 5": ["no rating here"] * 10,  # never a rating: failed, not 0
    }[case][n]


@pytest.fixture()
def chat_data(tmp_path: Path):
    data = tmp_path / "LongBench_Chat"
    data.mkdir()
    cases = [{"idx": i, "query": f"Question of case {i}?", "prompt": f"Long context ... case {i}", "answer": f"ref {i}"}
             for i in range(1, 6)]
    shots = [[{"answer": f"shot {i}.{k}", "score": s} for k, s in enumerate((2, 5, 9))] for i in range(1, 6)]
    (data / "test_cases.json").write_text(json.dumps(cases))
    (data / "few_shots.json").write_text(json.dumps(shots))
    (data / "prompt_fs.txt").write_text(TEMPLATE)
    pred = tmp_path / "preds" / "my-model.jsonl"
    pred.parent.mkdir()
    pred.write_text("".join(json.dumps({"idx": i, "pred": f"  my answer\nto case {i}  "}) + "\n" for i in range(1, 6)))
    return data, pred


def run_score_only(data: Path, pred: Path, out: Path, url: str) -> int:
    return main(["eval", "longbench-chat", "--data", str(data), "--score-only", str(pred), "--output-dir", str(out),
                 f"eval.judge.base_url={url}", f"eval.judge.api_key_env={KEY_ENV}", "eval.judge.max_retries=2",
                 "eval.judge.model=judge-x", *FAST])


def test_score_only_against_a_fake_judge(chat_data, tmp_path: Path, monkeypatch, caplog, capsys):
    monkeypatch.setenv(KEY_ENV, KEY)
    caplog.set_level(logging.DEBUG)
    data, pred = chat_data
    out = tmp_path / "out"
    with FakeJudge(chat_script) as judge:
        assert run_score_only(data, pred, out, judge.url) == 75  # case 5 is not rated: incomplete
        sent = len(judge.requests)
        result = json.loads((out / "my-model" / "longbench-chat" / "result.json").read_text())
        assert result["score"] == pytest.approx((8 + 7.5 + 6 + 9) / 4 * 10)  # 76.25; case 5 is not a 0
        assert (result["n_rated"], result["n_failed"], result["n_pending"], result["n_cases"]) == (4, 1, 0, 5)
        assert result["complete"] is False
        by_idx = {c["idx"]: c for c in result["cases"]}
        assert [by_idx[i]["rating"] for i in range(1, 6)] == [8, 7.5, 6, 9, None]
        assert by_idx[5]["status"] == "failed" and by_idx[5]["tries"] == 3 and by_idx[3]["tries"] == 2
        assert by_idx[2]["judge_reply"] == "At first [[3]], on reflection: [[7.5/10]]"
        # retries: a reply without a rating is asked again; the 500 and the 429 too, with backoff
        assert judge.calls == {"case 1": 1, "case 2": 1, "case 3": 2, "case 4": 3, "case 5": 3}
        assert result["usage"]["total_tokens"] == 15 * 4 and result["usage"]["requests_sent"] == 10
        assert result["judge"]["tokens_sent_for"]["total_tokens"] == 15 * 8  # the 8 replies that came
        # the released protocol: system message, temperature 0, the template filled in order
        req = next(r for r in judge.requests if r["case"] == "case 2")
        assert req["path"] == "/v1/chat/completions" and req["auth"] == f"Bearer {KEY}"
        assert req["body"]["temperature"] == 0 and req["body"]["model"] == "judge-x"
        assert req["body"]["messages"][0] == {"role": "system", "content": longbench_chat.SYSTEM}
        assert req["body"]["messages"][1]["content"] == TEMPLATE.format(
            "Question of case 2?", "ref 2", "shot 2.0", 2, "shot 2.1", 5, "shot 2.2", 9, "my answer to case 2")
        # a rerun is served from the cache, except case 5, which is asked again (nothing unusable is kept)
        assert run_score_only(data, pred, out, judge.url) == 75
        assert len(judge.requests) == sent + 3 and judge.calls["case 5"] == 6
        again = json.loads((out / "my-model" / "longbench-chat" / "result.json").read_text())
        assert again["score"] == result["score"] and again["usage"]["requests_sent"] == 3
    printed = capsys.readouterr()
    assert "76.25" in printed.out and "incomplete" in printed.err and "1 failed" in printed.err
    files = [p for p in out.rglob("*") if p.is_file()] + [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "judge.jsonl" for p in files)
    for p in files:
        assert KEY not in p.read_text(encoding="utf-8", errors="replace"), p
    assert KEY not in caplog.text and KEY not in printed.out + printed.err


def test_a_remote_judge_without_a_key_is_a_user_error(chat_data, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv(KEY_ENV, raising=False)
    data, pred = chat_data
    assert run_score_only(data, pred, tmp_path / "o", "https://judge.invalid/v1") == 2
    assert KEY_ENV in capsys.readouterr().err


def test_bad_data_is_named(chat_data, tmp_path: Path, capsys):
    data, pred = chat_data
    (data / "few_shots.json").write_text(json.dumps([[{"answer": "a", "score": 1}]] * 5))
    assert run_score_only(data, pred, tmp_path / "o", "http://127.0.0.1:9/v1") == 2
    assert "few_shots.json" in capsys.readouterr().err


def needle_script(case: str, n: int):
    return {"case 1": ["Rating: [[10]] (not [[2]])"], "case 2": [429, "[[3]]"], "case 3": ["no score"] * 5}[case][n]


def test_needle_judge_rating(tmp_path: Path, monkeypatch):
    """LongAlign's needle rating: the first [[n]] of the reply, beside the key-word recall."""
    monkeypatch.setenv(KEY_ENV, KEY)
    cfg = RunConfig()
    cfg.output_dir = str(tmp_path / "run")
    out = tmp_path / "needle"
    out.mkdir()
    items = [{"id": f"n{i}", "length": 1024 * (1 + i % 2), "depth": 50.0, "question": "What is the secret?",
              "needle": "The secret is cardamom."} for i in range(1, 4)]
    (out / "predictions.jsonl").write_text("".join(json.dumps({"id": f"n{i}", "pred": f"case {i}: cardamom"}) + "\n"
                                                   for i in range(1, 4)))
    with FakeJudge(needle_script) as judge:
        cfg.eval.judge.base_url, cfg.eval.judge.api_key_env, cfg.eval.judge.max_retries = judge.url, KEY_ENV, 1
        cfg.eval.judge.backoff_initial_s, cfg.eval.judge.backoff_max_s = 0.01, 0.02
        res = judge_needles(cfg, items, {"avg": 0.5}, out / "predictions.jsonl")
        req = judge.requests[0]["body"]
        assert req["messages"][0]["content"] == "You are a helpful assistant."
        assert "[Ground truth]\nThe secret is cardamom.\n" in req["messages"][1]["content"]
        assert judge.calls == {"case 1": 1, "case 2": 2, "case 3": 2}
    j = res["judge"]
    assert [r["rating"] for r in j["ratings"]] == [10, 3, None]
    assert (j["n_rated"], j["n_failed"]) == (2, 1)
    assert j["avg"] == pytest.approx((10 + 3) / 2)  # two cells (1024 and 2048 tokens at depth 50)
    assert res["avg"] == 0.5  # the recall's figures are kept beside the judge's


class TableGenerator:
    """Answers `answer to case N` to every request; records what it was sent."""

    def __init__(self, tokenizer, max_context: int):
        self.tokenizer, self.max_context, self.template, self.seen = tokenizer, max_context, "raw", []

    def generate(self, requests):
        from longcurate.eval.model import GenResult

        self.seen.extend(requests)
        return [GenResult(r.id, f"my answer to case {r.id}") for r in requests]


def test_generate_then_rate_and_resume(chat_data, tmp_path: Path, monkeypatch, tokenizer):
    """Run mode: one answer per case (an over-long prompt cut in the middle), rated, resumable."""
    from longcurate.core.config import build

    monkeypatch.setenv(KEY_ENV, KEY)
    data, _ = chat_data
    cases = json.loads((data / "test_cases.json").read_text())
    cases[0]["prompt"] = "BEGIN " + " ".join(f"w{i}" for i in range(600)) + " case 1 END"
    (data / "test_cases.json").write_text(json.dumps(cases))
    with FakeJudge(chat_script) as judge:
        cfg = build(RunConfig, {"output_dir": str(tmp_path / "run"), "eval": {
            "longbench_chat": {"data_dir": str(data), "max_new_tokens": 16},
            "judge": {"base_url": judge.url, "api_key_env": KEY_ENV, "max_retries": 2, "backoff_initial_s": 0.01,
                      "backoff_max_s": 0.02}}})
        gen = TableGenerator(tokenizer, max_context=300)
        result = longbench_chat.run_longbench_chat(cfg, label="m", model="my-model", backend=gen)
        assert [r.id for r in gen.seen] == ["1", "2", "3", "4", "5"] and gen.seen[0].max_new_tokens == 16
        assert result["truncated"] == 1 and len(tokenizer(gen.seen[0].prompt)["input_ids"]) <= 300
        assert gen.seen[0].prompt.startswith("BEGIN") and gen.seen[0].prompt.rstrip().endswith("END")
        assert result["score"] == pytest.approx(76.25) and result["label"] == "m"
        out = tmp_path / "run" / "eval" / "m" / "longbench-chat"
        assert [json.loads(x)["idx"] for x in (out / "pred.jsonl").open()] == [1, 2, 3, 4, 5]
        assert result["_stats"]["complete"] is False and result["_stats"]["failed"] == 1  # case 5: no rating
        sent = len(judge.requests)
        again = longbench_chat.run_longbench_chat(cfg, label="m", model="my-model", backend=gen)
        # nothing generated again; only case 5, never rated, is asked again
        assert len(gen.seen) == 5 and len(judge.requests) == sent + 3 and again["score"] == result["score"]
