"""LongBench metrics against hand-computed values (docs/reference.md, "LongBench (v1) scoring")."""

from __future__ import annotations

import pytest

from longcurate.eval import metrics as m

APPROX = 1e-7  # the rouge package adds 1e-8 to its F denominator


# --- QA F1 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  New   York\tCity \n", "new york city"),
    ("U.S.A.", "usa"),
    ("An apple, a pear and THE plum.", "apple pear and plum"),
    ("another theory", "another theory"),  # articles only as whole words
    ("", ""),
    ("the a an", ""),
])
def test_normalize_answer(text, expected):
    assert m.normalize_answer(text) == expected


@pytest.mark.parametrize("pred, gt, expected", [
    ("The Eiffel Tower!", "eiffel tower", 1.0),  # case, punctuation, article
    ("a cat sat", "the cat", 2 / 3),  # P = 1/2, R = 1
    ("Paris, France", "Paris", 2 / 3),
    ("  New   York\tCity ", "new york city", 1.0),  # whitespace
    ("the the cat cat cat", "cat cat dog", 2 / 3),  # multiset: 2 of 3 on each side
    ("another theory", "theory", 2 / 3),
    ("", "paris", 0.0),  # empty prediction
    ("the", "the", 0.0),  # both empty after normalisation: nothing overlaps
    ("london", "paris", 0.0),
    ("one two three four", "three four five", 4 / 7),  # P = 2/4, R = 2/3 -> 2*(1/3)/(7/6)
])
def test_qa_f1(pred, gt, expected):
    assert m.qa_f1_score(pred, gt) == pytest.approx(expected, abs=1e-12)


def test_normalize_zh_answer():
    assert m.normalize_zh_answer("  北京，ABC！ ") == "北京abc"
    assert m.normalize_zh_answer("。") == ""


def test_qa_f1_zh():
    # jieba: 北京天安门。 -> 北京 / 天安门 / 。 ; the full stop normalises to "" and is dropped
    assert m.qa_f1_zh_score("北京天安门。", "天安门") == pytest.approx(2 / 3)
    assert m.qa_f1_zh_score("他去了北京大学。", "北京大学") == pytest.approx(2 * (1 / 4) / (5 / 4))  # P 1/4, R 1
    assert m.qa_f1_zh_score("", "北京") == 0.0
    assert m.qa_f1_zh_score("天安门！", "天安门") == 1.0


# --- ROUGE-L -----------------------------------------------------------------------------------

def test_rouge_l():
    # LCS "quick brown" = 2 of 4 tokens on each side: P = R = F = 0.5 (the package keeps "a")
    assert m.rouge_score("a quick brown fox", "quick brown dog jumps") == pytest.approx(0.5, abs=APPROX)
    assert m.rouge_score("quick brown fox", "quick brown fox") == pytest.approx(1.0, abs=APPROX)
    assert m.rouge_score("", "quick brown fox") == 0.0  # the package raises on an empty hypothesis -> 0
    assert m.rouge_score("zebra", "quick brown fox") == 0.0


def test_rouge_l_zh():
    # 今天天气 / 很 / 好 vs 今天天气 / 不错: LCS 1, P = 1/3, R = 1/2, F = 0.4
    assert m.rouge_zh_score("今天天气很好", "今天天气不错") == pytest.approx(0.4, abs=APPROX)
    assert m.rouge_zh_score("", "今天天气不错") == 0.0


# --- classification, retrieval, count, code ----------------------------------------------------

CLASSES = ["Entity", "Human being", "Human", "Location", "Description"]


@pytest.mark.parametrize("pred, gt, expected", [
    ("Location", "Location", 1.0),
    ("Location or Entity", "Location", 0.5),
    ("Human being", "Human being", 1.0),  # "Human" is a proper substring of the answer: dropped
    ("Human", "Human being", 0.0),
    ("Entity", "Location", 0.0),
    ("", "Location", 0.0),
])
def test_classification(pred, gt, expected):
    assert m.classification_score(pred, gt, all_classes=CLASSES) == expected


def test_classification_drops_every_substring_class():
    # REFERENCE's rule drops ab, a and b; a remove-while-iterating loop would keep "a" and give 0.5.
    assert m.classification_score("abc", "abc", all_classes=["ab", "a", "b", "abc"]) == 1.0


def test_classification_needs_classes():
    with pytest.raises(ValueError):
        m.classification_score("x", "x")


@pytest.mark.parametrize("pred, gt, expected", [
    ("Paragraph 3", "Paragraph 3", 1.0),
    ("Paragraph 3 and Paragraph 12", "Paragraph 3", 0.5),
    ("Paragraph 30", "Paragraph 3", 0.0),
    ("I do not know", "Paragraph 3", 0.0),
    ("3, 3 or 4", "Paragraph 3", 2 / 3),
])
def test_retrieval_en(pred, gt, expected):
    assert m.retrieval_score(pred, gt) == pytest.approx(expected, abs=1e-12)


def test_retrieval_zh():
    assert m.retrieval_zh_score("答案是段落5", "段落5") == 1.0
    assert m.retrieval_zh_score("段落5或段落15", "段落5") == 0.5
    assert m.retrieval_zh_score("不知道", "段落5") == 0.0


def test_count():
    assert m.count_score("7", "7") == 1.0
    assert m.count_score("There are 7 unique paragraphs out of 10.", "7") == 0.5
    assert m.count_score("seven", "7") == 0.0
    assert m.count_score("17", "7") == 0.0


def test_code_sim():
    pred = "\n\n```python\n# increment\n    return x + 1\n```"
    assert m.code_sim_score(pred, "    return x + 1") == 1.0
    assert m.code_sim_score("// c\nint a = 1;", "int a = 1;") == 1.0
    # Indel ratio: 16 characters in all, 2 edits -> 14/16 = 87.5%, an integer percentage as fuzz.ratio: 88
    assert m.code_sim_score("return x", "return y") == 0.88
    assert m.code_sim_score("# only\n# comments", "abc") == 0.0


# --- records and tasks -------------------------------------------------------------------------

def test_every_task_has_a_metric():
    assert len(m.TASKS) == 21
    assert set(m.E_TASKS) <= set(m.TASKS) and len(m.E_TASKS) == 13
    assert set(m.CATEGORY) == set(m.TASKS)
    assert m.TASK_METRIC["multifieldqa_zh"] is m.QA_F1_ZH
    assert m.TASK_METRIC["dureader"] is m.ROUGE_L_ZH
    assert m.TASK_METRIC["lsht"] is m.CLASSIFICATION
    assert all(metric.higher_is_better and metric.aggregation == "mean" for metric in m.TASK_METRIC.values())
    with pytest.raises(ValueError, match="unknown LongBench task"):
        m.metric_for("nope")


def test_best_ground_truth_counts():
    assert m.score_record("hotpotqa", "Barack Obama", ["Michelle", "Obama", "Barack Obama"]) == 1.0
    assert m.score_record("hotpotqa", "Barack Obama", ["Michelle", "Obama"]) == pytest.approx(2 / 3)
    assert m.score_record("passage_count", "4", ["3", "4"]) == 1.0


def test_first_line_cut():
    # trec: without the cut both classes match (0.5); the first line alone matches one
    assert m.score_record("trec", "\n\nLocation\nEntity", ["Location"], ["Location", "Entity"]) == 1.0
    assert m.score_record("triviaqa", "\nParis\nNot London", ["Paris"]) == 1.0
    assert m.score_record("hotpotqa", "\nParis\nNot London", ["Paris"]) == pytest.approx(0.5)  # no cut: P=1/3
    assert m.first_line("\n\nab\ncd") == "ab"
    assert m.first_line("") == ""


def test_task_score_and_buckets():
    assert m.task_score([1.0, 2 / 3, 0.0]) == 55.56
    assert m.task_score([1.0, 0.5]) == 75.0
    assert m.task_score([]) is None
    assert [m.length_bucket(n) for n in (0, 3999, 4000, 7999, 8000)] == ["0-4k", "0-4k", "4-8k", "4-8k", "8k+"]
    scores = [1.0, 0.0, 1.0, 1.0, 0.5, 0.0]
    lengths = [100, 3999, 4000, 7999, 8000, 20000]
    assert m.bucket_scores(scores, lengths) == {"0-4k": 50.0, "4-8k": 100.0, "8k+": 25.0}
    assert m.bucket_scores([1.0], [100]) == {"0-4k": 100.0, "4-8k": None, "8k+": None}


def test_metric_declarations_decide_the_task_score():
    assert m.QA_F1.task_score([1.0, 2 / 3, 0.0]) == m.task_score([1.0, 2 / 3, 0.0]) == 55.56
    assert m.QA_F1.task_score([]) is None
    assert m.ROUGE_L.describe() == {"metric": "rouge_l", "aggregation": "mean", "higher_is_better": True}
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        m.Metric("x", m.qa_f1_score, aggregation="median")
