"""Probe / needle scores and the VaL span aggregation on hand-made predictions with known results."""

from __future__ import annotations

import math

import pytest

from longcurate.eval import scoring


def test_word_recall():
    gt = "The cat sat on the mat."
    # words(gt) = {the, cat, sat, on, mat.} (5); pred has the, cat, mat. -> 3/5
    assert scoring.word_recall("the CAT likes the mat.", gt) == pytest.approx(3 / 5)
    assert scoring.word_recall(gt, gt) == 1.0
    assert scoring.word_recall("", gt) == 0.0
    assert scoring.word_recall("mat", gt) == 0.0  # "mat." is the word, punctuation included
    assert scoring.word_recall("anything", "") == 0.0


def test_code_match():
    assert scoring.code_match("The function is `_parse_header`.", "_parse_header") == 1.0
    assert scoring.code_match("parse_header", "_parse_header") == 0.0
    assert scoring.code_match("It is foo", "foo.") == 1.0  # gt stripped of '.'
    assert scoring.code_match("FOO", "foo") == 0.0  # case-sensitive, as published


def test_database_match():
    assert scoring.database_match("That is the greenland sea.", "Greenland Sea", "Body of water") == 1.0
    assert scoring.database_match("a BODY OF WATER", "Greenland Sea", "Body of water.") == 1.0
    assert scoring.database_match("a lake", "Greenland Sea", "Body of water") == 0.0
    assert scoring.database_match("anything", "X", None) == 0.0


def test_score_probe_dispatch():
    assert scoring.score_probe({"task": "document", "answer": "a b c d"}, "a b") == 0.5
    assert scoring.score_probe({"task": "code", "answer": "f"}, "f") == 1.0
    assert scoring.score_probe({"task": "database", "answer": "L", "description": "d"}, "D") == 1.0
    with pytest.raises(ValueError):
        scoring.score_probe({"task": "poetry", "answer": "x"}, "x")


def _item(task, set_id, pos, score):
    return {"task": task, "set_id": set_id, "position_id": pos, "score": score}


def test_aggregate_by_span_then_sets():
    # code task, 2 sets, 4 positions, span 2 -> spans {0,1} and {2,3}
    items = [
        _item("code", 0, 0, 1.0), _item("code", 0, 1, 1.0), _item("code", 0, 2, 0.0), _item("code", 0, 3, 1.0),
        _item("code", 1, 0, 0.0), _item("code", 1, 1, 1.0), _item("code", 1, 2, 0.0), _item("code", 1, 3, 0.0),
    ]
    # span 0: set0 mean 1.0, set1 mean 0.5 -> 0.75; span 1: set0 0.5, set1 0.0 -> 0.25
    agg = scoring.aggregate_probes(items, span=2)
    t = agg["tasks"]["code"]
    assert [s["score"] for s in t["spans"]] == [0.75, 0.25]
    assert [s["positions"] for s in t["spans"]] == [[0, 1], [2, 3]]
    assert t["avg"] == pytest.approx(0.5)
    assert t["gap"] == pytest.approx(0.5)
    assert t["n"] == 8
    assert [p["score"] for p in t["by_position"]] == [0.5, 1.0, 0.0, 0.5]


def test_aggregate_mean_within_set_before_over_sets():
    # a missing (skipped) item changes a set's span mean, not the other set's weight
    items = [_item("document", 0, 0, 1.0), _item("document", 0, 1, 0.0), _item("document", 1, 0, 0.2)]
    t = scoring.aggregate_probes(items, span=2)["tasks"]["document"]
    assert t["spans"][0]["score"] == pytest.approx((0.5 + 0.2) / 2)
    assert t["gap"] == 0.0


def test_aggregate_all_is_mean_of_tasks():
    items = [_item("code", 0, 0, 1.0), _item("code", 0, 1, 0.0),
             _item("database", 0, 0, 1.0), _item("database", 0, 1, 1.0)]
    agg = scoring.aggregate_probes(items, span=1)
    assert agg["tasks"]["code"]["avg"] == 0.5 and agg["tasks"]["code"]["gap"] == 1.0
    assert agg["tasks"]["database"]["avg"] == 1.0 and agg["tasks"]["database"]["gap"] == 0.0
    # "mean": the item mean with its bootstrap interval. Four items 1, 0, 1, 1: a resample's mean is
    # 0 with probability 1/256 (< 2.5%) and <= 0.25 with 13/256 (> 2.5%); it is 1 with 81/256.
    assert agg["all"] == {"avg": 0.75, "gap": 0.5, "mean": {"mean": 0.75, "low": 0.25, "high": 1.0, "n": 4}}
    assert agg["tasks"]["database"]["mean"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 2}


def test_interval_is_core_bootstrap_on_the_items():
    from longcurate.core.stats import bootstrap_mean

    xs = [0.1, 0.9, 0.4, 0.4, 0.7, 0.0, 1.0]
    e = bootstrap_mean(xs)
    assert scoring.interval(xs) == {"mean": e.mean, "low": e.low, "high": e.high, "n": 7}
    assert scoring.interval(xs, scale=100, digits=2) == {"mean": round(100 * e.mean, 2), "low": round(100 * e.low, 2),
                                                         "high": round(100 * e.high, 2), "n": 7}
    assert scoring.interval([]) == {"mean": None, "low": None, "high": None, "n": 0}


def test_aggregate_matches_film_table_arithmetic():
    # FILM-7B's "all" column is the mean of the three tasks' avg and gap
    tasks = {"document": (0.854, 0.061), "code": (0.833, 0.187), "database": (0.890, 0.168)}
    items = []
    for task, (avg, gap) in tasks.items():  # two spans of one position: avg ± gap/2
        items += [_item(task, 0, 0, avg + gap / 2), _item(task, 0, 1, avg - gap / 2)]
    agg = scoring.aggregate_probes(items, span=1)
    assert round(100 * agg["all"]["avg"], 1) == 85.9
    assert round(100 * agg["all"]["gap"], 1) == 13.9


def test_aggregate_rejects_bad_span():
    with pytest.raises(ValueError):
        scoring.aggregate_probes([], span=0)


def test_needle_recall_and_grid():
    keys = ["spoonful", "green", "cardamom", "kerala"]
    assert scoring.needle_recall("A spoonful of green cardamom from Kerala!", keys) == 1.0
    assert scoring.needle_recall("Cardamom, I think.", keys) == 0.25
    assert scoring.needle_recall("", keys) == 0.0
    grid = scoring.aggregate_needle([
        {"length": 512, "depth": 0.0, "score": 1.0}, {"length": 1024, "depth": 0.0, "score": 0.5},
        {"length": 512, "depth": 100.0, "score": 0.0},
    ])
    assert grid["lengths"] == [512, 1024] and grid["depths"] == [0.0, 100.0]
    assert grid["grid"] == [[1.0, 0.5], [0.0, None]]
    assert grid["avg"] == pytest.approx(0.5)
    assert not math.isnan(grid["avg"])
