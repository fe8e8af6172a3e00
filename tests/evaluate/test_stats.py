"""Statistics against values computed by hand (or taken from the papers that define them)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from t2iscope.evaluate import stats


def test_wilson_matches_hand_computation() -> None:
    # p = 0.8, z^2 = 3.8415: centre 0.71674, half-width 0.22657
    lo, hi = stats.wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = stats.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert all(math.isnan(v) for v in stats.wilson(0, 0))
    with pytest.raises(ValueError):
        stats.wilson(3, 2)


def test_newcombe_difference_matches_newcombe_1998() -> None:
    # Newcombe (1998), example (a): 56/70 vs 48/80 -> 0.2000 [0.0524, 0.3339]
    d, lo, hi = stats.newcombe_diff(56, 70, 48, 80)
    assert (
        d == pytest.approx(0.2)
        and lo == pytest.approx(0.0524, abs=1e-4)
        and hi == pytest.approx(0.3339, abs=1e-4)
    )


def test_imbalance_heim_style() -> None:
    # f = (.5, .25, .25): (|.5-1/3| + 2|.25-1/3|) / 3 = 1/9
    assert stats.imbalance([2, 1, 1]) == pytest.approx(1 / 9)
    # one category only, two absent ones still count: (2/3 + 1/3 + 1/3) / 3 = 4/9
    assert stats.imbalance([5], k=3) == pytest.approx(4 / 9)
    assert stats.imbalance([3, 3, 3]) == 0.0


def test_imbalance_bootstrap_is_seeded_and_brackets_the_value() -> None:
    codes = np.array([0] * 30 + [1] * 6 + [2] * 4)
    v, lo, hi = stats.imbalance_with_ci(codes, 3, n_boot=300, seed=1)
    assert v == pytest.approx(stats.imbalance([30, 6, 4]))
    assert lo <= v <= hi and hi - lo > 0
    assert (v, lo, hi) == stats.imbalance_with_ci(codes, 3, n_boot=300, seed=1)
    wide = stats.imbalance_with_ci(codes[::4], 3, n_boot=300, seed=1)
    assert wide[2] - wide[1] > hi - lo  # fewer observations, wider interval
    # every image in one category: the interval is the share's uncertainty, not a point
    v, lo, hi = stats.imbalance_with_ci(np.zeros(13, dtype=int), 2, n_boot=2000, seed=0)
    assert v == hi == 0.5 and 0.2 < lo < 0.35  # |p - 1/2| over p's Wilson [0.77, 1.00] is [0.27, 0.5]


def test_concentration_measures() -> None:
    assert stats.hhi([50, 30, 20]) == pytest.approx(0.25 + 0.09 + 0.04)
    assert stats.gini([1, 1, 1, 1]) == 0.0
    assert stats.gini([0, 0, 0, 10]) == pytest.approx(0.75)  # (n-1)/n when one holds all
    assert stats.top_share([5, 1, 3, 1], 2) == pytest.approx(0.8)
    np.testing.assert_allclose(stats.coverage_curve([1, 3, 6]), [0.6, 0.9, 1.0])


def test_cohen_kappa_hand_value() -> None:
    a = ["y", "y", "n", "n", "y"]
    b = ["y", "n", "n", "n", "y"]
    # p_o = 0.8, p_e = 0.6*0.4 + 0.4*0.6 = 0.48 -> 0.32 / 0.52
    assert stats.cohen_kappa(a, b) == pytest.approx(0.32 / 0.52)
    assert stats.cohen_kappa(a, a) == 1.0
    assert math.isnan(stats.cohen_kappa(["dog"], ["dog"]))  # one label each: chance agreement is 1
    with pytest.raises(ValueError):
        stats.cohen_kappa(a, b[:2])


def test_psnr() -> None:
    a = np.zeros((10, 10, 1), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10  # mse = 100 / 100 = 1
    assert stats.psnr(a, b) == pytest.approx(10 * math.log10(255**2))
    assert stats.psnr(a, a) == math.inf


def test_wilson_bounds_are_exact_at_zero_and_all() -> None:
    """No rounding leaves the interval above 0/n or below n/n (it did: 2.8e-17 at 0 of 12)."""
    for n in (1, 7, 12, 1000):
        assert stats.wilson(0, n)[0] == 0.0 and stats.wilson(n, n)[1] == 1.0
