"""LongBench (v1) metrics: per-record functions `metric(prediction, ground_truth, all_classes=None) -> float`
in [0, 1], each declared with its aggregation and direction, plus the task -> metric map and the
task-level scoring rule (docs/reference.md, "LongBench (v1) scoring", is normative).

A task's score is `round(100 * mean over samples of max over ground truths, 2)`; LongBench-E splits
the samples by their `length` into 0-4k (< 4000), 4-8k (< 8000) and 8k+.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from longcurate.core.errors import UserError

MetricFn = Callable[..., float]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)
# ASCII punctuation plus the full-width and CJK punctuation LongBench strips from Chinese answers.
_ZH_PUNCT = frozenset(string.punctuation + "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」"
                      "『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.")
_NUMBER = re.compile(r"\d+")


# --- normalisation ---------------------------------------------------------------------------

def normalize_answer(s: str) -> str:
    """English answer normalisation: lower-case, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _ASCII_PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def normalize_zh_answer(s: str) -> str:
    """Chinese token normalisation: lower-case, drop ASCII and Chinese punctuation, drop all whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _ZH_PUNCT)
    return "".join(s.split())


def _jieba_cut(text: str) -> list[str]:
    """jieba's precise mode; imported lazily (it builds its dictionary on first use)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return list(jieba.cut(text, cut_all=False))


def first_line(prediction: str) -> str:
    """Leading newlines stripped, then everything up to the next newline."""
    return prediction.lstrip("\n").split("\n")[0]


# --- per-record metrics ----------------------------------------------------------------------

def token_f1(prediction_tokens: Sequence[str], ground_truth_tokens: Sequence[str]) -> float:
    """F1 of the multiset overlap of two token lists; 0 when nothing overlaps."""
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(ground_truth_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_f1_score(prediction: str, ground_truth: str, **_: object) -> float:
    return token_f1(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


def qa_f1_zh_score(prediction: str, ground_truth: str, **_: object) -> float:
    pred = [t for t in (normalize_zh_answer(t) for t in _jieba_cut(prediction)) if t]
    gold = [t for t in (normalize_zh_answer(t) for t in _jieba_cut(ground_truth)) if t]
    return token_f1(pred, gold)


def rouge_score(prediction: str, ground_truth: str, **_: object) -> float:
    """ROUGE-L F of the `rouge` package; any error (empty hypothesis, recursion on huge inputs) -> 0."""
    from rouge import Rouge

    try:
        return float(Rouge().get_scores([prediction], [ground_truth], avg=True)["rouge-l"]["f"])
    except Exception:  # noqa: BLE001 - the reference scores every failure of the package as 0
        return 0.0


def rouge_zh_score(prediction: str, ground_truth: str, **_: object) -> float:
    return rouge_score(" ".join(_jieba_cut(prediction)), " ".join(_jieba_cut(ground_truth)))


def classification_score(prediction: str, ground_truth: str, all_classes: Iterable[str] | None = None,
                         **_: object) -> float:
    """Classes of `all_classes` found in the prediction, minus those that are a proper substring of the
    ground truth; 1/len(matches) when the ground truth is among them, else 0.

    docs/reference.md's rule drops *every* such class. (LongBench's own script removes items from the list
    it is iterating over, which can skip a neighbour; we follow the stated rule.)
    """
    if all_classes is None:
        raise ValueError("classification needs all_classes")
    matches = [c for c in all_classes if c in prediction]
    matches = [c for c in matches if not (c in ground_truth and c != ground_truth)]
    if ground_truth in matches:
        return 1.0 / len(matches)
    return 0.0


def _number_share(prediction: str, target: str) -> float:
    numbers = _NUMBER.findall(prediction)
    if not numbers:
        return 0.0
    return sum(1 for n in numbers if n == target) / len(numbers)


def _paragraph_id(ground_truth: str, pattern: str) -> str:
    found = re.findall(pattern, ground_truth)
    if not found:
        raise ValueError(f"ground truth {ground_truth[:60]!r} has no paragraph number ({pattern})")
    return found[0]


def retrieval_score(prediction: str, ground_truth: str, **_: object) -> float:
    """Share of the numbers in the prediction that equal the ground truth's `Paragraph N`."""
    return _number_share(prediction, _paragraph_id(ground_truth, r"Paragraph (\d+)"))


def retrieval_zh_score(prediction: str, ground_truth: str, **_: object) -> float:
    """Share of the numbers in the prediction that equal the ground truth's `段落N`."""
    return _number_share(prediction, _paragraph_id(ground_truth, r"段落(\d+)"))


def count_score(prediction: str, ground_truth: str | int, **_: object) -> float:
    """Share of the numbers in the prediction that equal the ground truth, compared as the official
    scorer does: `str(number) == str(ground_truth)` (passage_count's answers are integers in LongBench's files)."""
    return _number_share(prediction, str(ground_truth))


def fuzz_ratio(s1: str, s2: str) -> int:
    """fuzzywuzzy's `fuzz.ratio` (with python-Levenshtein): 100 for equal strings, 0 when one is empty,
    else `int(round(100 * r))` with `r` the Indel similarity `(len1 + len2 - indel) / (len1 + len2)`.
    An integer: Python's `round` (halves to even), as fuzzywuzzy's `utils.intr` rounds."""
    from rapidfuzz.distance import Indel

    if s1 == s2:
        return 100
    if not s1 or not s2:
        return 0
    total = len(s1) + len(s2)
    return int(round(100 * ((total - Indel.distance(s1, s2)) / total)))


def code_sim_score(prediction: str, ground_truth: str, **_: object) -> float:
    """Edit similarity of the first code line (no ```, #, //) with the ground truth: the official
    `fuzz.ratio(line, gt) / 100`, whose ratio is an integer percentage (`fuzz_ratio`)."""
    line = ""
    for candidate in prediction.lstrip("\n").split("\n"):
        if "`" not in candidate and "#" not in candidate and "//" not in candidate:
            line = candidate
            break
    return fuzz_ratio(line, ground_truth) / 100


# --- declarations ----------------------------------------------------------------------------

def task_score(record_scores: Sequence[float]) -> float | None:
    """round(100 x mean, 2); None when there is nothing to average."""
    if not record_scores:
        return None
    return round(100 * sum(record_scores) / len(record_scores), 2)


# How a metric's per-record scores (each the max over its ground truths) become a task score.
AGGREGATIONS: dict[str, Callable[[Sequence[float]], float | None]] = {"mean": task_score}


@dataclass(frozen=True)
class Metric:
    """A per-record metric in [0, 1], how records aggregate into a task score (`AGGREGATIONS`), and
    its direction: result.json declares both per task, and tasks are averaged only when they agree."""

    name: str
    fn: MetricFn
    aggregation: str = "mean"
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"metric {self.name}: unknown aggregation {self.aggregation!r}; known: {list(AGGREGATIONS)}")

    def __call__(self, prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
        return float(self.fn(prediction, ground_truth, all_classes=all_classes))

    def task_score(self, record_scores: Sequence[float]) -> float | None:
        """The task's score (0-100) from its records' scores; None when there is none."""
        return AGGREGATIONS[self.aggregation](record_scores)

    def describe(self) -> dict[str, str | bool]:
        return {"metric": self.name, "aggregation": self.aggregation, "higher_is_better": self.higher_is_better}


QA_F1 = Metric("qa_f1", qa_f1_score)
QA_F1_ZH = Metric("qa_f1_zh", qa_f1_zh_score)
ROUGE_L = Metric("rouge_l", rouge_score)
ROUGE_L_ZH = Metric("rouge_l_zh", rouge_zh_score)
CLASSIFICATION = Metric("classification", classification_score)
RETRIEVAL = Metric("retrieval", retrieval_score)
RETRIEVAL_ZH = Metric("retrieval_zh", retrieval_zh_score)
COUNT = Metric("count", count_score)
CODE_SIM = Metric("code_sim", code_sim_score)

TASK_METRIC: dict[str, Metric] = {
    "narrativeqa": QA_F1, "qasper": QA_F1, "multifieldqa_en": QA_F1, "multifieldqa_zh": QA_F1_ZH,
    "hotpotqa": QA_F1, "2wikimqa": QA_F1, "musique": QA_F1, "dureader": ROUGE_L_ZH,
    "gov_report": ROUGE_L, "qmsum": ROUGE_L, "multi_news": ROUGE_L, "vcsum": ROUGE_L_ZH,
    "trec": CLASSIFICATION, "triviaqa": QA_F1, "samsum": ROUGE_L, "lsht": CLASSIFICATION,
    "passage_count": COUNT, "passage_retrieval_en": RETRIEVAL, "passage_retrieval_zh": RETRIEVAL_ZH,
    "lcc": CODE_SIM, "repobench-p": CODE_SIM,
}
TASKS: list[str] = list(TASK_METRIC)
# LongBench-E covers these 13 tasks (English and code), with data spread evenly over lengths.
E_TASKS: list[str] = ["qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "gov_report", "multi_news", "trec",
                      "triviaqa", "samsum", "passage_count", "passage_retrieval_en", "lcc", "repobench-p"]
FIRST_LINE_TASKS = frozenset({"trec", "triviaqa", "samsum", "lsht"})
CATEGORY: dict[str, str] = {
    **dict.fromkeys(["narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh"], "single-doc QA"),
    **dict.fromkeys(["hotpotqa", "2wikimqa", "musique", "dureader"], "multi-doc QA"),
    **dict.fromkeys(["gov_report", "qmsum", "multi_news", "vcsum"], "summarization"),
    **dict.fromkeys(["trec", "triviaqa", "samsum", "lsht"], "few-shot"),
    **dict.fromkeys(["passage_count", "passage_retrieval_en", "passage_retrieval_zh"], "synthetic"),
    **dict.fromkeys(["lcc", "repobench-p"], "code"),
}
BUCKETS: tuple[str, ...] = ("0-4k", "4-8k", "8k+")


def metric_for(task: str) -> Metric:
    try:
        return TASK_METRIC[task]
    except KeyError:
        raise UserError(f"unknown LongBench task {task!r}; known: {', '.join(TASKS)}") from None


def score_record(task: str, prediction: str, answers: Sequence[str | int],
                 all_classes: Sequence[str] | None = None) -> float:
    """One sample's score in [0, 1]: the best over its ground truths (after the first-line cut). An
    integer ground truth (passage_count) is compared as its decimal text, `str(gt)`, as the official
    `count_score` compares it."""
    metric = metric_for(task)
    if task in FIRST_LINE_TASKS:
        prediction = first_line(prediction)
    best = 0.0
    for gt in answers:
        best = max(best, metric(prediction, str(gt), all_classes))
    return best


def length_bucket(length: int) -> str:
    if length < 4000:
        return "0-4k"
    if length < 8000:
        return "4-8k"
    return "8k+"


def bucket_scores(record_scores: Sequence[float], lengths: Sequence[int],
                  aggregate: Callable[[Sequence[float]], float | None] = task_score) -> dict[str, float | None]:
    """LongBench-E: the task score within each length bucket (None for an empty bucket)."""
    groups: dict[str, list[float]] = {b: [] for b in BUCKETS}
    for s, n in zip(record_scores, lengths, strict=True):
        groups[length_bucket(n)].append(s)
    return {b: aggregate(v) for b, v in groups.items()}
