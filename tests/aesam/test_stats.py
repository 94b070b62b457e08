"""Paired differences to SAM against scipy's own tests and a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mltk_plugins.aesam.stats import describe, paired
from scipy import stats


def test_paired_statistics_match_a_hand_computation_and_scipy():
    a = [0.91, 0.93, 0.90, 0.95, 0.92]
    b = [0.90, 0.91, 0.905, 0.935, 0.92]
    got = paired(a, b)
    d = np.subtract(a, b)  # 0.01, 0.02, -0.005, 0.015, 0: mean 0.008
    assert got["n"] == 5 and got["mean"] == pytest.approx(0.008)
    by_hand = math.sqrt(sum((x - 0.008) ** 2 for x in d) / 4) / math.sqrt(5)
    assert got["se"] == pytest.approx(by_hand)
    assert got["t_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    # sign test: 3 positive, 1 negative, 1 tie dropped -> 2 * P(X <= 1), X ~ Bin(4, 1/2) = 10/16
    assert got["sign_p"] == pytest.approx(10 / 16)
    assert got["sign_p"] == pytest.approx(stats.binomtest(3, 4).pvalue)
    assert describe(got) == f"+0.80 ± {100 * by_hand:.2f} (t p {got['t_p']:.2g}, sign p 0.62)"


def test_paired_statistics_edge_cases():
    one = paired([0.9], [0.8])
    assert one["mean"] == pytest.approx(0.1) and one["se"] is None and one["t_p"] is None
    same = paired([0.9, 0.8], [0.9, 0.8])
    assert same["mean"] == 0 and same["se"] == 0 and same["t_p"] == 1.0 and same["sign_p"] == 1.0
    allup = paired([1.0] * 6, [0.0] * 6)
    assert allup["t_p"] == 0.0 and allup["sign_p"] == pytest.approx(2 / 64)
    with pytest.raises(ValueError):
        paired([0.1, 0.2], [0.1])
