"""Bootstrap intervals and the paired permutation test against hand-computed values and scipy."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sp

from longcurate.core.stats import bootstrap_mean, paired_comparison, sign_flip_p_value


def test_bootstrap_on_a_hand_computed_example():
    # [0, 0, 1]: the 27 equally likely resamples have means 0, 1/3, 2/3, 1 with counts 8, 12, 6, 1,
    # so P(mean <= 0) = 0.296 > 0.025 and P(mean <= 2/3) = 0.963 < 0.975: the 95% interval is [0, 1].
    est = bootstrap_mean([0, 0, 1], resamples=20_000, seed=1)
    assert est.mean == pytest.approx(1 / 3) and est.n == 3
    assert (est.low, est.high) == (0.0, 1.0)


def test_bootstrap_agrees_with_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 1.0, size=200)
    ours = bootstrap_mean(x, resamples=20_000, seed=3)
    theirs = sp.bootstrap((x,), np.mean, method="percentile", n_resamples=20_000, random_state=4,
                          confidence_level=0.95).confidence_interval
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert abs(ours.low - theirs.low) < 0.05 * se * 4 and abs(ours.high - theirs.high) < 0.05 * se * 4
    # and both are close to the normal-theory interval
    assert ours.low == pytest.approx(x.mean() - 1.96 * se, abs=0.2 * se)


def test_exact_sign_flip_test_on_a_hand_computed_example():
    # differences [1, 2, 3]: the 8 sign patterns give means 2, 4/3, 2/3, 0, 0, -2/3, -4/3, -2;
    # P(T >= 2) = 1/8, so the two-sided p-value is 2/8.
    assert sign_flip_p_value([1, 2, 3]) == pytest.approx(0.25)
    assert sign_flip_p_value([0, 0, 0]) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_sign_flip_test_agrees_with_scipy(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.2, 1, 10), rng.normal(0, 1, 10)
    theirs = sp.permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                                 n_resamples=10_000, alternative="two-sided").pvalue
    assert paired_comparison(a, b).p_value == pytest.approx(theirs, rel=1e-12)


def test_randomised_sign_flip_test_agrees_with_scipy():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0.15, 1, 60), rng.normal(0, 1, 60)
    theirs = sp.permutation_test((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), permutation_type="samples",
                                 n_resamples=20_000, alternative="two-sided", vectorized=True, rng=1).pvalue
    ours = paired_comparison(a, b, resamples=20_000, seed=2).p_value
    assert abs(ours - theirs) < 0.01


def test_paired_comparison_checks_its_input():
    with pytest.raises(ValueError, match="same items"):
        paired_comparison([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_mean([1.0, float("nan")])
    assert bootstrap_mean([]).n == 0


def test_same_seed_same_interval():
    x = list(itertools.islice(itertools.cycle([0.1, 0.5, 0.9, 0.3]), 50))
    assert bootstrap_mean(x, seed=7) == bootstrap_mean(x, seed=7)
