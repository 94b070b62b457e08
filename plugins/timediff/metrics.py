"""Forecast metrics: MSE and MAE of the point forecast, CRPS of the sample distribution
(predictive.py scores the other forms of a forecast distribution).

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
    """Mean CRPS of the empirical distribution of S samples (S, ...) against truth (...)."""
    from .predictive import crps_ensemble

    return float(np.mean(crps_ensemble(samples, truth)))


def point_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"mse": mse(pred, truth), "mae": mae(pred, truth)}
