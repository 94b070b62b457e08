"""Predictive distributions of a forecast, scored the way probabilistic forecasters are judged.

Three forms, all over (N, H, C) windows x steps x channels on the normalised scale:

- `Samples`: S draws (TimeDiff's raw samples); quantiles and CRPS from the draws;
- `Gaussian`: a mean and a standard deviation; CRPS in closed form;
- `Empirical`: a point forecast plus a residual distribution per step and channel, held as its
  quantiles at M evenly spaced levels (j - 1/2) / M, optionally times a per-window scale (split
  conformal, and the calibrated TimeDiff).

`score` gives MSE and MAE of the point forecast, CRPS (mean, per channel, per horizon step), the
weighted quantile loss at 0.1..0.9, and the coverage and mean width of the 50/80/90% central
intervals, the last two per horizon step as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INTERVALS = (0.5, 0.8, 0.9)
QL_LEVELS = tuple(round(0.1 * i, 1) for i in range(1, 10))
GRID = 200  # residual quantile levels kept by an Empirical distribution


def grid_levels(m: int = GRID) -> np.ndarray:
    return (np.arange(m) + 0.5) / m


def _phi(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _Phi(z: np.ndarray) -> np.ndarray:
    import torch

    return torch.special.ndtr(torch.from_numpy(np.asarray(z, np.float64))).numpy()


def _Phi_inv(q: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(q)


def crps_gaussian(mu, sigma, y) -> np.ndarray:
    """CRPS of N(mu, sigma^2) at y, elementwise (Gneiting and Raftery, 2007, eq. 21)."""
    sigma = np.maximum(np.asarray(sigma, np.float64), 1e-12)
    z = (np.asarray(y, np.float64) - mu) / sigma
    return sigma * (z * (2 * _Phi(z) - 1) + 2 * _phi(z) - 1 / math.sqrt(math.pi))


def crps_ensemble(samples, y) -> np.ndarray:
    """CRPS of the empirical distribution of S draws (S, ...) at y (...), elementwise.

    E|X - y| - E|X - X'| / 2; the pair term uses sum_ij |x_i - x_j| = 2 sum_i (2i - S - 1) x_(i).
    """
    s = np.sort(np.asarray(samples, np.float64), axis=0)
    n = s.shape[0]
    term1 = np.mean(np.abs(s - np.asarray(y, np.float64)[None]), axis=0)
    weights = (2 * np.arange(1, n + 1) - n - 1).reshape(-1, *([1] * (s.ndim - 1)))
    return term1 - np.sum(weights * s, axis=0) / (n * n)


def crps_atoms(atoms: np.ndarray, e: np.ndarray) -> np.ndarray:
    """CRPS of M equally weighted atoms (M, H, C), sorted along M, at e (N, H, C)."""
    m, horizon, channels = atoms.shape
    out = np.empty(e.shape, np.float64)
    ranks = (2 * np.arange(1, m + 1) - m - 1)[:, None, None]
    pair = np.sum(ranks * atoms, axis=0) / (m * m)  # E|A - A'| / 2, (H, C)
    for h in range(horizon):
        for c in range(channels):
            a = atoms[:, h, c]
            cs = np.concatenate([[0.0], np.cumsum(a)])
            q = e[:, h, c]
            below = np.searchsorted(a, q)  # atoms < q
            # sum |a_j - q| = q*below - cs[below] + (cs[m] - cs[below]) - q*(m - below)
            dist = q * below - cs[below] + (cs[m] - cs[below]) - q * (m - below)
            out[:, h, c] = dist / m - pair[h, c]
    return out


class Predictive:
    """What every form gives: a point forecast, quantiles, and CRPS elementwise."""

    point: np.ndarray

    def quantiles(self, levels) -> np.ndarray:  # (Q, N, H, C)
        raise NotImplementedError

    def crps(self, y: np.ndarray) -> np.ndarray:  # (N, H, C)
        raise NotImplementedError


@dataclass
class Samples(Predictive):
    samples: np.ndarray  # (S, N, H, C)
    point: np.ndarray | None = None  # default: the mean of the samples

    def __post_init__(self) -> None:
        if self.point is None:
            self.point = self.samples.mean(axis=0)

    def quantiles(self, levels) -> np.ndarray:
        return np.quantile(self.samples, list(levels), axis=0)

    def crps(self, y) -> np.ndarray:
        return crps_ensemble(self.samples, y)


@dataclass
class Gaussian(Predictive):
    point: np.ndarray  # the mean (N, H, C)
    sigma: np.ndarray  # broadcastable to it, e.g. (H, C)

    def quantiles(self, levels) -> np.ndarray:
        return np.stack([self.point + _Phi_inv(q) * self.sigma for q in levels])

    def crps(self, y) -> np.ndarray:
        return crps_gaussian(self.point, self.sigma, y)


@dataclass
class Empirical(Predictive):
    """point + scale * R, with R's quantiles (M, H, C) at grid_levels(M); scale (N, 1|H, C)."""

    point: np.ndarray
    grid: np.ndarray
    scale: np.ndarray | None = None

    def _scale(self) -> np.ndarray | float:
        return 1.0 if self.scale is None else self.scale

    def quantiles(self, levels) -> np.ndarray:
        levels_m = grid_levels(self.grid.shape[0])
        out = []
        for q in levels:
            j = int(np.clip(np.searchsorted(levels_m, q) - 1, 0, len(levels_m) - 2))
            w = float(np.clip((q - levels_m[j]) / (levels_m[j + 1] - levels_m[j]), 0.0, 1.0))
            r = (1 - w) * self.grid[j] + w * self.grid[j + 1]  # (H, C)
            out.append(self.point + self._scale() * r[None])
        return np.stack(out)

    def crps(self, y) -> np.ndarray:
        scale = self._scale()
        return scale * crps_atoms(self.grid, (np.asarray(y, np.float64) - self.point) / scale)


def residual_grid(residuals: np.ndarray, m: int = GRID) -> np.ndarray:
    """Quantiles (M, H, C) of residuals (N, H, C) at grid_levels(M): an Empirical's `grid`."""
    return np.quantile(np.asarray(residuals, np.float64), grid_levels(m), axis=0)


def central(level: float) -> tuple[float, float]:
    return (1 - level) / 2, (1 + level) / 2


def score(pred: Predictive, y: np.ndarray) -> dict:
    """Every number of a probabilistic row; `y` (N, H, C) on the scale of `pred`."""
    y = np.asarray(y, np.float64)
    point = np.asarray(pred.point, np.float64)
    crps = pred.crps(y)
    row = {
        "mse": float(np.mean((point - y) ** 2)),
        "mae": float(np.mean(np.abs(point - y))),
        "crps": float(crps.mean()),
    }
    denom = float(np.sum(np.abs(y))) or 1.0
    losses = []
    for q, pq in zip(QL_LEVELS, pred.quantiles(QL_LEVELS), strict=True):
        diff = y - pq
        losses.append(2 * float(np.sum(np.maximum(q * diff, (q - 1) * diff))) / denom)
    row["wql"] = float(np.mean(losses))
    by_step = {"crps": crps.mean(axis=(0, 2)).tolist()}
    for level in INTERVALS:
        lo, hi = pred.quantiles(central(level))
        inside = (y >= lo) & (y <= hi)
        pct = round(level * 100)
        row[f"coverage{pct}"] = float(inside.mean())
        row[f"width{pct}"] = float((hi - lo).mean())
        by_step[f"coverage{pct}"] = inside.mean(axis=(0, 2)).tolist()
    row["crps_by_channel"] = crps.mean(axis=(0, 1)).tolist()
    row["by_step"] = by_step
    return row
