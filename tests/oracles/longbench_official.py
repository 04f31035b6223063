"""LongBench's official `metrics.py` `count_score` and `code_sim_score`, and fuzzywuzzy's `fuzz.ratio`
(with python-Levenshtein: `Levenshtein.ratio`, i.e. 2 x LCS / total length, then `utils.intr`), written
out without rapidfuzz, for tests of `longcurate.eval.metrics`."""

from __future__ import annotations

import re


def lcs(a: str, b: str) -> int:
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b):
            cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def fuzz_ratio(s1: str, s2: str) -> int:
    """fuzzywuzzy: @check_for_none, @check_for_equivalence (100), @check_empty_string (0), then
    `utils.intr(100 * SequenceMatcher(None, s1, s2).ratio())` with intr = int(round(x))."""
    if s1 == s2:
        return 100
    if len(s1) == 0 or len(s2) == 0:
        return 0
    return int(round(100 * (2 * lcs(s1, s2) / (len(s1) + len(s2)))))


def code_sim_score(prediction, ground_truth, **kwargs):
    all_lines = prediction.lstrip("\n").split("\n")
    prediction = ""
    for line in all_lines:
        if ("`" not in line) and ("#" not in line) and ("//" not in line):
            prediction = line
            break
    return fuzz_ratio(prediction, ground_truth) / 100


def count_score(prediction, ground_truth, **kwargs):
    numbers = re.findall(r"\d+", prediction)
    right_num = 0
    for number in numbers:
        if str(number) == str(ground_truth):
            right_num += 1
    final_score = 0.0 if len(numbers) == 0 else right_num / len(numbers)
    return float(final_score)
