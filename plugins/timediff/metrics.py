"""Forecast metrics: MSE and MAE of the point forecast, CRPS of the sample distribution.

All are averaged over windows, steps and channels, on whatever scale they are given (the
literature reports the dataset-normalised scale).
"""

from __future__ import annotations

import numpy as np


def mse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean((np.asarray(pred, np.float64) - truth) ** 2))


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - truth)))


def crps_samples(samples: np.ndarray, truth: np.ndarray) -> float:
    """CRPS of the empirical distribution of S samples (S, ...) against truth (...).

    CRPS = E|X - y| - E|X - X'| / 2 with both expectations over the S samples; the pairwise term
    uses the sorted-sample identity sum_ij |x_i - x_j| = 2 sum_i (2i - S - 1) x_(i), i = 1..S.
    """
    s = np.sort(np.asarray(samples, np.float64), axis=0)
    n = s.shape[0]
    term1 = np.mean(np.abs(s - truth[None]), axis=0)
    weights = (2 * np.arange(1, n + 1) - n - 1).reshape(-1, *([1] * (s.ndim - 1)))
    term2 = np.sum(weights * s, axis=0) / (n * n)
    return float(np.mean(term1 - term2))


def point_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"mse": mse(pred, truth), "mae": mae(pred, truth)}
