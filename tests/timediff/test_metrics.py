"""MSE, MAE and the sample CRPS against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from mltk_plugins.timediff import baselines, metrics


def test_crps_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    s, y = rng.standard_normal((7, 5, 3)), rng.standard_normal((5, 3))
    term1 = np.abs(s - y).mean(0)
    term2 = np.abs(s[:, None] - s[None, :]).mean((0, 1)) / 2
    assert metrics.crps_samples(s, y) == pytest.approx(float(np.mean(term1 - term2)))


def test_crps_of_a_single_sample_is_the_mae():
    rng = np.random.default_rng(1)
    p, y = rng.standard_normal((1, 10, 2)), rng.standard_normal((10, 2))
    assert metrics.crps_samples(p, y) == pytest.approx(metrics.mae(p[0], y))


def test_crps_of_a_normal_approaches_its_closed_form():
    # CRPS(N(0,1), 0) = 2 phi(0) - 1/sqrt(pi) = sqrt(2/pi) - 1/sqrt(pi)
    s = np.random.default_rng(2).standard_normal((4000, 1))
    expected = np.sqrt(2 / np.pi) - 1 / np.sqrt(np.pi)
    assert metrics.crps_samples(s, np.zeros(1)) == pytest.approx(expected, abs=0.01)


def test_seasonal_naive_repeats_the_last_season():
    x = np.arange(10, dtype=float).reshape(1, 10, 1)
    out = baselines.seasonal_naive(x, 7, period=3)
    np.testing.assert_array_equal(out[0, :, 0], [7, 8, 9, 7, 8, 9, 7])
    np.testing.assert_array_equal(baselines.seasonal_naive(x, 2, period=20)[0, :, 0], [9, 9])


def test_dlinear_decomposition_reconstructs_the_input():
    import torch

    model = baselines.DLinear(12, 4, kernel=5)
    x = torch.randn(2, 12, 3)
    trend = model.moving_average(x)
    assert trend.shape == x.shape
    torch.testing.assert_close(trend[:, 2], x[:, :5].mean(1))
