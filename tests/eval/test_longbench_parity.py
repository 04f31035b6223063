"""LongBench scorer parity with the official metrics.py: integer answers (passage_count's files) are
scored as `str(number)`, and code similarity is fuzzywuzzy's integer `fuzz.ratio` (tests/oracles)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.eval import metrics
from oracles import longbench_official as official

PAIRS = [("return x", "return y"),  # 87.5 -> 88
         ("abcdefgh", "aXXXXXXX"),  # 12.5 -> 12: Python's round, half to even, as fuzzywuzzy's intr
         ("", "x = 1"), ("", ""), ("same", "same"), ("\n```\nfoo()\n```", "foo()"), ("# c\n// d\n", "x"),
         ("    self.assertEqual(a, b)", "self.assertEqual(a, c)")]


def test_fuzz_ratio_is_the_official_integer():
    rng = random.Random(0)
    alphabet = "ab c(d)=1_\t"
    pairs = PAIRS + [("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))),
                      "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))) for _ in range(400)]
    halves = 0
    for pred, gt in pairs:
        assert metrics.fuzz_ratio(pred, gt) == official.fuzz_ratio(pred, gt), (pred, gt)
        assert metrics.code_sim_score(pred, gt) == official.code_sim_score(pred, gt), (pred, gt)
        total = len(pred) + len(gt)
        halves += bool(total and pred != gt and (200 * official.lcs(pred, gt)) % total * 2 == total)
    assert halves >= 5  # ties at .5 are covered: rounding half to even matters there
    assert metrics.fuzz_ratio("abcdefgh", "aXXXXXXX") == 12 and metrics.code_sim_score("return x", "return y") == 0.88


def test_count_score_matches_official_with_integer_answers():
    for pred in ("7", "There are 7 or 10 paragraphs", "none", "07", "17 7 7"):
        for gt in (7, "7", 10):
            assert metrics.count_score(pred, gt) == official.count_score(pred, gt)
            assert metrics.score_record("passage_count", pred, [gt]) == official.count_score(pred, gt)


def _line(pred: str, answers: list, length: int = 100) -> str:
    return json.dumps({"pred": pred, "answers": answers, "all_classes": None, "length": length}) + "\n"


def test_score_only_integer_answers_and_lcc(tmp_path: Path):
    d = tmp_path / "pred"
    d.mkdir()
    counts = [("7", [7]), ("There are 7 or 10.", [7]), ("12", [12]), ("3", [4]), ("5 5", [5, 6])]
    (d / "passage_count.jsonl").write_text("".join(_line(p, a) for p, a in counts))  # integers, as released
    code = [(p, [g]) for p, g in PAIRS] + [("x = foo(1)\n", ["x = foo(2)", "y = foo(1)"])]
    (d / "lcc.jsonl").write_text("".join(_line(p, a) for p, a in code))
    assert main(["eval", "longbench", "--score-only", str(d), f"output_dir={tmp_path}"]) == 0
    result = json.loads((tmp_path / "eval" / "pred" / "longbench" / "pred" / "result.json").read_text())
    want_count = sum(max(official.count_score(p, g) for g in a) for p, a in counts) / len(counts)
    want_lcc = sum(max(official.code_sim_score(p, g) for g in a) for p, a in code) / len(code)
    assert result["scores"] == {"passage_count": round(100 * want_count, 2), "lcc": round(100 * want_lcc, 2)}
    assert result["counts"]["passage_count"] == {"scored": 5, "failed": 0}
    assert result["intervals"]["lcc"]["mean"] == pytest.approx(round(100 * want_lcc, 2))
