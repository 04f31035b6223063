"""The train / eval split of a corpus: stable, salted, the asked-for share, independent of order."""

import pytest

from longcurate.core.errors import ConfigError
from longcurate.core.holdout import HoldoutConfig, keeps, side_of, unit_hash


def test_split_is_stable_and_has_the_asked_for_share():
    h = HoldoutConfig(fraction=0.2, salt="s")
    ids = [f"doc-{i}" for i in range(20_000)]
    sides = [side_of(i, h) for i in ids]
    share = sides.count("eval") / len(ids)
    assert abs(share - 0.2) < 0.01
    assert sides == [side_of(i, h) for i in ids]  # same answer every time
    assert sides[::-1] == [side_of(i, h) for i in reversed(ids)]  # order does not matter


def test_salt_draws_another_split_and_zero_keeps_everything_for_training():
    ids = [f"d{i}" for i in range(2000)]
    a = {i for i in ids if side_of(i, HoldoutConfig(0.3, "a")) == "eval"}
    b = {i for i in ids if side_of(i, HoldoutConfig(0.3, "b")) == "eval"}
    assert a != b
    assert all(side_of(i, HoldoutConfig(0.0)) == "train" for i in ids)


def test_sides_are_disjoint_and_cover_the_corpus():
    h = HoldoutConfig()
    ids = [f"x{i}" for i in range(500)]
    train = {i for i in ids if keeps(i, "train", h)}
    evaluation = {i for i in ids if keeps(i, "eval", h)}
    assert not train & evaluation and train | evaluation == set(ids)
    assert all(keeps(i, None, h) for i in ids)


def test_growing_a_fraction_only_moves_documents_into_eval():
    ids = [f"y{i}" for i in range(3000)]
    small = {i for i in ids if side_of(i, HoldoutConfig(0.1)) == "eval"}
    large = {i for i in ids if side_of(i, HoldoutConfig(0.3)) == "eval"}
    assert small <= large
    assert 0 <= unit_hash("y1", "salt") < 1


def test_bad_fraction_is_a_config_error():
    with pytest.raises(ConfigError, match="holdout.fraction"):
        HoldoutConfig(fraction=1.0)


def test_which_corpora_are_partitioned():
    from longcurate.core.holdout import partitioned

    assert partitioned("wiki-summaries", None) and partitioned("wiki-summaries", "mine.jsonl")
    assert partitioned("mine.jsonl", "mine.jsonl")  # both sides read one user corpus: split it
    assert not partitioned("mine.jsonl", "wiki-summaries")  # a corpus of its own is read whole
